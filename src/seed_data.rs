//! Synthetic O2O orders: a deterministic generator with the dashboard's shape.
//!
//! Pure data, no database: the seed command streams these rows through binary
//! COPY, and tests check their distributions without a server. The skew is
//! what makes index choices realistic: a few channels and products carry most
//! orders, lunch and dinner dominate, stores differ in size.

/// The report's data set: 93,728 orders across 4 stores.
pub const DEFAULT_ORDERS: u64 = 93_728;
pub const DEFAULT_STORES: u32 = 4;

/// Business dates run for one year up to this day (the report's date), as days since 2000-01-01.
pub const LAST_DATE: i32 = days_from_civil(2025, 12, 10);
pub const DAYS: i32 = 365;
/// The first business date, as days since 2000-01-01.
pub const FIRST_DATE: i32 = LAST_DATE - DAYS + 1;

/// The calendar months (year, month) the business dates fall in, oldest
/// first: what a table partitioned by month needs a partition for.
pub fn months() -> Vec<(i32, u32)> {
    let (mut y, mut m, _) = civil_from_days(FIRST_DATE);
    let (last_y, last_m, _) = civil_from_days(LAST_DATE);
    let mut out = Vec::new();
    while (y, m) <= (last_y, last_m) {
        out.push((y, m));
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    out
}

/// SplitMix64: small, fast, and the same sequence on every platform for a given seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }

    /// Picks an index by weight.
    pub fn weighted(&mut self, cumulative: &[u32]) -> usize {
        let total = cumulative.last().copied().unwrap_or(1).max(1);
        let x = self.below(u64::from(total)) as u32;
        cumulative.partition_point(|c| *c <= x)
    }
}

fn cumulative(weights: impl IntoIterator<Item = u32>) -> Vec<u32> {
    weights
        .into_iter()
        .scan(0u32, |acc, w| {
            *acc += w;
            Some(*acc)
        })
        .collect()
}

/// (channel, order number prefix, weight)
pub const CHANNELS: &[(&str, &str, u32)] = &[
    ("美团", "MT", 38),
    ("饿了么", "ELM", 27),
    ("京东到家", "JD", 11),
    ("抖音", "DY", 9),
    ("小程序", "WX", 9),
    ("门店自提", "ZT", 6),
];

/// (period, first hour, hours long, weight)
pub const TIME_PERIODS: &[(&str, u32, u32, u32)] = &[
    ("早餐", 6, 4, 15),
    ("午餐", 10, 4, 31),
    ("下午茶", 14, 3, 17),
    ("晚餐", 17, 4, 27),
    ("夜宵", 21, 3, 10),
];

/// (product, category_l1, category_l2, price in cents, cost share in percent)
pub const PRODUCTS: &[(&str, &str, &str, i64, i64)] = &[
    ("招牌牛肉饭", "正餐", "盖饭", 3200, 48),
    ("美式咖啡", "饮品", "咖啡", 1800, 30),
    ("生椰拿铁", "饮品", "咖啡", 2400, 32),
    ("宫保鸡丁饭", "正餐", "盖饭", 2800, 46),
    ("杨枝甘露", "饮品", "奶茶", 1900, 38),
    ("黄焖鸡米饭", "正餐", "盖饭", 2600, 47),
    ("珍珠奶茶", "饮品", "奶茶", 1500, 35),
    ("鲜肉小笼包", "早点", "包点", 1600, 40),
    ("香辣鸡腿堡", "小吃", "汉堡", 2200, 44),
    ("番茄牛腩面", "正餐", "面食", 3000, 45),
    ("可颂", "烘焙", "面包", 1200, 36),
    ("凯撒沙拉", "轻食", "沙拉", 3500, 42),
    ("豆浆油条套餐", "早点", "套餐", 900, 38),
    ("芒果果切", "水果", "果切", 2500, 52),
    ("炸鸡翅", "小吃", "炸物", 1800, 43),
    ("红烧肉套餐", "正餐", "套餐", 3800, 49),
    ("抹茶拿铁", "饮品", "咖啡", 2600, 33),
    ("鸡胸肉能量碗", "轻食", "能量碗", 3900, 44),
    ("牛角包", "烘焙", "面包", 1400, 37),
    ("麻辣烫", "正餐", "面食", 2700, 41),
    ("柠檬茶", "饮品", "果茶", 1600, 28),
    ("提拉米苏", "烘焙", "蛋糕", 3200, 40),
    ("西瓜果切", "水果", "果切", 1800, 50),
    ("薯条", "小吃", "炸物", 1200, 30),
    ("皮蛋瘦肉粥", "早点", "粥品", 1300, 35),
    ("酸菜鱼饭", "正餐", "盖饭", 3600, 50),
    ("草莓蛋糕", "烘焙", "蛋糕", 3800, 42),
    ("冰美式(大杯)", "饮品", "咖啡", 2200, 29),
    ("牛油果沙拉", "轻食", "沙拉", 4200, 46),
    ("烤冷面", "小吃", "街头小吃", 1500, 34),
];

pub const SCENES: &[&str] = &["外卖配送", "到店自取", "堂食", "团购核销", "企业团餐"];

const CITIES: &[&str] = &[
    "北京朝阳大悦城",
    "上海徐汇滨江",
    "广州天河城",
    "深圳南山科技园",
    "杭州西湖银泰",
    "成都春熙路",
    "武汉光谷",
    "南京新街口",
    "西安小寨",
    "重庆解放碑",
];

/// Store names: a fixed list, numbered branches beyond it.
pub fn store_names(n: u32) -> Vec<String> {
    (0..n as usize)
        .map(|i| match CITIES.get(i) {
            Some(city) => format!("{city}店"),
            None => format!("{}{}号店", CITIES[i % CITIES.len()], i / CITIES.len() + 1),
        })
        .collect()
}

/// One generated order line. Money is in cents; dates are days since 2000-01-01.
#[derive(Debug, Clone, PartialEq)]
pub struct Order<'a> {
    pub order_id: i64,
    pub order_no: String,
    pub date: i32,
    /// Microseconds since 2000-01-01 00:00.
    pub order_time: i64,
    pub store_name: &'a str,
    pub channel: &'static str,
    pub product_name: &'static str,
    pub category_l1: &'static str,
    pub category_l2: &'static str,
    pub scene: &'static str,
    pub time_period: &'static str,
    pub quantity: i32,
    pub unit_price: i64,
    pub amount: i64,
    pub cost: i64,
    pub profit: i64,
}

/// Generates orders one by one in constant memory.
pub struct Generator {
    rng: Rng,
    stores: Vec<String>,
    store_weights: Vec<u32>,
    channel_weights: Vec<u32>,
    period_weights: Vec<u32>,
    product_weights: Vec<u32>,
    day_weights: Vec<u32>,
}

impl Generator {
    pub fn new(seed: u64, stores: u32) -> Generator {
        let names = store_names(stores.max(1));
        // Bigger flagship stores first: 100, 80, 66, 57, ...
        let store_weights = cumulative((0..names.len() as u32).map(|i| 200 / (i + 2)));
        // Zipf-like popularity: the first products sell most.
        let product_weights = cumulative((0..PRODUCTS.len() as u32).map(|i| 1000 / (i + 3)));
        // Weekends are busier; the year slowly grows.
        let day_weights = cumulative((0..DAYS).map(|d| {
            let date = FIRST_DATE + d;
            let weekday = (date + 5).rem_euclid(7); // 2000-01-01 was a Saturday: 0 = Monday
            let weekend = if weekday >= 5 { 14 } else { 10 };
            (weekend * (100 + d as u32 / 4)) / 10
        }));
        Generator {
            rng: Rng::new(seed),
            stores: names,
            store_weights,
            channel_weights: cumulative(CHANNELS.iter().map(|c| c.2)),
            period_weights: cumulative(TIME_PERIODS.iter().map(|p| p.3)),
            product_weights,
            day_weights,
        }
    }

    pub fn stores(&self) -> &[String] {
        &self.stores
    }

    /// The order with this id (ids count from 1).
    pub fn next_order(&mut self, order_id: i64) -> Order<'_> {
        let r = &mut self.rng;
        let store = r.weighted(&self.store_weights);
        let channel = CHANNELS[r.weighted(&self.channel_weights)];
        let (period, first_hour, hours, _) = TIME_PERIODS[r.weighted(&self.period_weights)];
        let product = PRODUCTS[r.weighted(&self.product_weights)];
        let date = FIRST_DATE + r.weighted(&self.day_weights) as i32;
        let second_of_day = i64::from(first_hour) * 3600 + r.below(u64::from(hours) * 3600) as i64;
        let scene = match (channel.0, r.below(10)) {
            ("门店自提", 0..=5) => "到店自取",
            ("门店自提", _) => "堂食",
            ("抖音", 0..=6) => "团购核销",
            ("小程序", 0..=3) => "到店自取",
            (_, 9) if r.below(3) == 0 => "企业团餐",
            _ => "外卖配送",
        };
        let quantity = [1, 1, 1, 1, 1, 2, 2, 2, 3, 4][r.below(10) as usize];
        let unit_price = product.3;
        let amount = unit_price * i64::from(quantity);
        // Cost varies a little around the product's share.
        let cost_percent = product.4 + r.below(7) as i64 - 3;
        let cost = amount * cost_percent / 100;
        let (y, m, d) = civil_from_days(date);
        Order {
            order_id,
            order_no: format!("{}{y:04}{m:02}{d:02}{order_id:08}", channel.1),
            date,
            order_time: (i64::from(date) * 86_400 + second_of_day) * 1_000_000,
            store_name: &self.stores[store],
            channel: channel.0,
            product_name: product.0,
            category_l1: product.1,
            category_l2: product.2,
            scene,
            time_period: period,
            quantity,
            unit_price,
            amount,
            cost,
            profit: amount - cost,
        }
    }
}

/// Days since 2000-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
pub const fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy as i32;
    era * 146_097 + doe - 719_468 - 10_957
}

/// The date for days since 2000-01-01.
pub fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = days + 10_957 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i32::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(days_from_civil(2000, 1, 1), 0);
        assert_eq!(civil_from_days(LAST_DATE), (2025, 12, 10));
        for d in -1000..20_000 {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn the_months_cover_every_date() {
        let months = months();
        assert_eq!(months.first(), Some(&(2024, 12)));
        assert_eq!(months.last(), Some(&(2025, 12)));
        assert_eq!(months.len(), 13);
        let mut g = Generator::new(3, 4);
        for id in 1..5000 {
            let (y, m, _) = civil_from_days(g.next_order(id).date);
            assert!(months.contains(&(y, m)), "{y}-{m}");
        }
    }

    #[test]
    fn same_seed_same_orders() {
        let mut a = Generator::new(7, 4);
        let mut b = Generator::new(7, 4);
        for id in 1..1000 {
            assert_eq!(a.next_order(id), b.next_order(id));
        }
        let mut c = Generator::new(8, 4);
        let differs = (1..100).any(|id| a.next_order(id) != c.next_order(id));
        assert!(differs);
    }
}
