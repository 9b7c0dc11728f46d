-- An SQL workload for bench/riscv-programs/run.sh (sqlite3 :memory: < work.sql): bulk
-- inserts from a recursive CTE, index builds, grouping, joins, sorting, string functions
-- and a correlated subquery; integers and text only, so every build prints the same bytes.
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INT, item INT, qty INT, day INT, note TEXT);
CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, price INT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000)
INSERT INTO items SELECT x, printf('item-%04d-%s', x, substr('abcdefghijklmnopqrstuvwxyz', 1 + x % 26, 3)),
       100 + (x * 7919) % 9900 FROM c;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000)
INSERT INTO orders SELECT x, (x * 104729) % 5000, 1 + (x * 7907) % 2000, 1 + (x * 31) % 9,
       (x * 17) % 365, printf('order %d for customer %d', x, (x * 104729) % 5000) FROM c;
CREATE INDEX orders_customer ON orders(customer);
CREATE INDEX orders_item ON orders(item, day);
SELECT count(*), sum(qty), min(day), max(day) FROM orders;
SELECT customer, count(*) AS n, sum(qty * price) AS total
  FROM orders JOIN items ON items.id = orders.item
  GROUP BY customer ORDER BY total DESC, customer LIMIT 5;
SELECT day / 30 AS month, count(*), sum(qty), count(DISTINCT customer)
  FROM orders GROUP BY month ORDER BY month;
SELECT i.name, count(*) AS n FROM items i JOIN orders o ON o.item = i.id
  WHERE i.name LIKE '%-abc' GROUP BY i.id ORDER BY n DESC, i.name LIMIT 5;
SELECT c1.customer, c1.n FROM
  (SELECT customer, count(*) AS n FROM orders GROUP BY customer) c1
  WHERE c1.n > (SELECT avg(n) + 2 FROM (SELECT count(*) AS n FROM orders GROUP BY customer))
  ORDER BY c1.n DESC, c1.customer LIMIT 5;
SELECT o.id, o.note FROM orders o
  WHERE o.qty = (SELECT max(qty) FROM orders p WHERE p.customer = o.customer AND p.day < 10)
  ORDER BY o.id LIMIT 5;
SELECT upper(substr(note, 1, 5)), length(group_concat(note, ';')) FROM orders
  WHERE id % 1000 = 0 GROUP BY substr(note, 1, 5);
SELECT count(*) FROM orders a JOIN orders b ON a.customer = b.customer AND a.item = b.item AND a.id < b.id;
SELECT note FROM orders ORDER BY note DESC LIMIT 3;
