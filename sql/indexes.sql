-- The managed index set on orders: the 11 indexes of the V8.5 report.
-- One named CREATE INDEX per statement; o2o-db adds CONCURRENTLY itself and
-- compares definitions (method, columns, order, INCLUDE, predicate), not names.

-- Composite indexes: the dashboard always filters by store first.
CREATE INDEX idx_orders_store_date ON orders (store_name, date);        -- store + date (most used)
CREATE INDEX idx_orders_store_channel ON orders (store_name, channel);  -- store + channel
CREATE INDEX idx_orders_store_product ON orders (store_name, product_name); -- store + product
CREATE INDEX idx_orders_date_channel ON orders (date, channel);         -- date + channel

-- Single-column indexes.
CREATE INDEX idx_orders_store_name ON orders (store_name);
CREATE INDEX idx_orders_product_name ON orders (product_name);
CREATE INDEX idx_orders_channel ON orders (channel);
CREATE INDEX idx_orders_category_l1 ON orders (category_l1);
CREATE INDEX idx_orders_scene ON orders (scene);
CREATE INDEX idx_orders_time_period ON orders (time_period);

-- Latest orders first.
CREATE INDEX idx_orders_date_desc ON orders (date DESC);
