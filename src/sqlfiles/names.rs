//! The names o2o-db gives the indexes it builds besides the managed ones: a
//! replacement built before a swap, and each partition's index of a managed
//! index on a partitioned table. Deterministic, so a later run finds what an
//! interrupted one left, and within PostgreSQL's 63 bytes, so the server never
//! truncates two of them to the same name.

use super::tokens::MAX_IDENT_BYTES;

/// The name a replacement is built under before the swap: the managed name
/// with a suffix, cut to 63 bytes on a character boundary.
pub fn replacement_name(name: &str) -> String {
    const SUFFIX: &str = "_o2o_new";
    format!("{}{SUFFIX}", cut(name, MAX_IDENT_BYTES - SUFFIX.len()))
}

/// The index of `index` (a managed index, or its replacement) on the partition
/// `partition`: `idx_orders_scene__orders_2025_03`. A longer pair keeps as much
/// of both as fits and ends in a hash of the whole, so two long names that
/// share a prefix stay apart.
pub fn partition_index_name(index: &str, partition: &str) -> String {
    let full = format!("{index}__{partition}");
    if full.len() <= MAX_IDENT_BYTES {
        return full;
    }
    let hash = format!("_{:08x}", fnv1a32(full.as_bytes()));
    format!("{}{hash}", cut(&full, MAX_IDENT_BYTES - hash.len()))
}

/// `name` cut to at most `max` bytes on a character boundary.
fn cut(name: &str, max: usize) -> &str {
    let mut end = name.len().min(max);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// 32-bit FNV-1a: stable across Rust versions and machines, unlike std's hasher.
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash: u32, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_in_63_bytes_and_stay_apart() {
        assert_eq!(
            partition_index_name("idx_orders_scene", "orders_2025_03"),
            "idx_orders_scene__orders_2025_03"
        );
        let long = "idx_orders_store_name_product_name_category_l1";
        let a = partition_index_name(long, "orders_archive_2025_03");
        let b = partition_index_name(long, "orders_archive_2025_04");
        assert_eq!((a.len(), b.len()), (63, 63));
        assert_ne!(a, b);
        assert_eq!(a, partition_index_name(long, "orders_archive_2025_03"));
        // Multi-byte names are cut on a character boundary.
        let wide = partition_index_name(&"索引".repeat(12), "分区");
        assert!(wide.len() <= 63 && wide.is_char_boundary(wide.len()));
        assert_eq!(
            replacement_name("idx_orders_scene"),
            "idx_orders_scene_o2o_new"
        );
        assert_eq!(replacement_name(&"x".repeat(63)).len(), 63);
    }
}
