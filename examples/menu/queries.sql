-- The menu page's queries: o2o-db benchmark --queries examples/menu/queries.sql

-- name: category_items
-- index: yes
-- params: SELECT DISTINCT store_name, category FROM menu_items
-- description: one store's items of a category
SELECT item_name, price FROM menu_items WHERE store_name = $1 AND category = $2 ORDER BY item_name LIMIT 100;

-- name: cheapest_in_stock
-- index: yes
-- params: SELECT DISTINCT store_name FROM menu_items
-- description: the ten cheapest items a store has in stock
SELECT item_name, price FROM menu_items WHERE store_name = $1 AND in_stock ORDER BY price LIMIT 10;

-- name: recently_updated
-- index: yes
-- description: the latest price changes
SELECT item_name, updated_at FROM menu_items ORDER BY updated_at DESC LIMIT 20;
