-- The managed index set of menu_items: o2o-db create-indexes --indexes examples/menu/indexes.sql
CREATE INDEX idx_menu_store_category ON menu_items (store_name, category);
CREATE INDEX idx_menu_in_stock_price ON menu_items (store_name, price) WHERE in_stock;
CREATE INDEX idx_menu_updated_desc ON menu_items (updated_at DESC) INCLUDE (item_name);
