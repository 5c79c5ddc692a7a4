-- The dashboard's queries, timed by `o2o-db benchmark` and checked by `o2o-db verify`.
-- Above each query, key-value comment lines: name, index (yes when the planner
-- should reach orders through an index), params (a query whose rows are the
-- bound parameters, drawn with a fixed seed) and description.

-- name: count_all
-- index: no
-- description: COUNT(*) of all orders (the report's simple query)
SELECT count(*) FROM orders;

-- name: by_store
-- index: yes
-- params: SELECT DISTINCT store_name FROM orders
-- description: orders of one store (the report's indexed query)
SELECT count(*) FROM orders WHERE store_name = $1;

-- name: store_date
-- index: yes
-- params: SELECT s.store_name, d.day, d.day + 6 FROM (SELECT DISTINCT store_name FROM orders) s CROSS JOIN (SELECT DISTINCT date AS day FROM orders) d
-- description: one store over a week, per day (the report's composite query)
SELECT date, count(*) AS orders, sum(amount) AS revenue
FROM orders
WHERE store_name = $1 AND date BETWEEN $2 AND $3
GROUP BY date
ORDER BY date;

-- name: channel_revenue
-- index: yes
-- params: SELECT s.store_name, m.month, (m.month + interval '1 month')::date FROM (SELECT DISTINCT store_name FROM orders) s CROSS JOIN (SELECT DISTINCT date_trunc('month', date)::date AS month FROM orders) m
-- description: revenue by channel for a store and month
SELECT channel, count(*) AS orders, sum(amount) AS revenue, sum(profit) AS profit
FROM orders
WHERE store_name = $1 AND date >= $2 AND date < $3
GROUP BY channel
ORDER BY revenue DESC;

-- name: top_products
-- index: yes
-- params: SELECT DISTINCT store_name, (SELECT max(date) - 30 FROM orders) FROM orders
-- description: top 10 products of a store over its last 30 days
SELECT product_name, sum(quantity) AS sold, sum(amount) AS revenue
FROM orders
WHERE store_name = $1 AND date >= $2
GROUP BY product_name
ORDER BY revenue DESC
LIMIT 10;

-- name: category_share
-- index: yes
-- params: SELECT day, day + 6 FROM (SELECT DISTINCT date AS day FROM orders) d
-- description: share of revenue by first-level category over a week, all stores
SELECT category_l1, sum(amount) AS revenue,
       round(100.0 * sum(amount) / sum(sum(amount)) OVER (), 1) AS share_percent
FROM orders
WHERE date BETWEEN $1 AND $2
GROUP BY category_l1
ORDER BY revenue DESC;

-- name: by_time_period
-- index: yes
-- params: SELECT DISTINCT store_name, date FROM orders
-- description: orders by time of day for a store on one day
SELECT time_period, count(*) AS orders, sum(amount) AS revenue
FROM orders
WHERE store_name = $1 AND date = $2
GROUP BY time_period
ORDER BY orders DESC;

-- name: by_scene
-- index: yes
-- params: SELECT d.day, d.day + 6, c.channel FROM (SELECT DISTINCT date AS day FROM orders) d CROSS JOIN (SELECT DISTINCT channel FROM orders) c
-- description: orders by consumption scene for one channel over a week
SELECT scene, count(*) AS orders, sum(amount) AS revenue
FROM orders
WHERE date BETWEEN $1 AND $2 AND channel = $3
GROUP BY scene
ORDER BY orders DESC;

-- name: latest_orders
-- index: yes
-- description: the latest 50 orders, newest first
SELECT order_id, order_no, order_time, store_name, channel, product_name, amount
FROM orders
ORDER BY date DESC
LIMIT 50;
