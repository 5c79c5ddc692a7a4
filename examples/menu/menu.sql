-- Another table than orders: a store's menu with prices and stock, to show
-- o2o-db manages any table's index set and query suite. Creates and fills it:
--   psql "$URL" -f examples/menu/menu.sql
CREATE TABLE IF NOT EXISTS menu_items (
    item_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    store_name  text           NOT NULL,
    item_name   text           NOT NULL,
    category    text           NOT NULL,
    price       numeric(10, 2) NOT NULL,
    in_stock    boolean        NOT NULL,
    updated_at  timestamp      NOT NULL
);
INSERT INTO menu_items (store_name, item_name, category, price, in_stock, updated_at)
SELECT (ARRAY['北京朝阳大悦城店', '上海徐汇滨江店', '广州天河城店', '深圳南山科技园店'])[1 + i % 4],
       (ARRAY['美式咖啡', '生椰拿铁', '杨枝甘露', '招牌牛肉饭', '凯撒沙拉', '可颂'])[1 + i % 6] || ' #' || i,
       (ARRAY['饮品', '饮品', '饮品', '正餐', '轻食', '烘焙'])[1 + i % 6],
       round((10 + (i * 7919) % 3000 / 100.0)::numeric, 2),
       i % 10 <> 0,
       timestamp '2025-12-10' - (i % 365) * interval '1 day'
FROM generate_series(1, 50000) AS i;
ANALYZE menu_items;
