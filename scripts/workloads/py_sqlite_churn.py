# A Python workload: an in-memory sqlite table and a dict cache churned continuously.
import random, sqlite3, json, time
random.seed(1)
db = sqlite3.connect(":memory:")
db.execute("create table kv (k integer primary key, v text, n integer)")
cache = {}
i = 0
while True:
    k = random.randrange(20000)
    v = json.dumps({"id": k, "tick": i, "name": "user%d" % k, "tags": [random.randrange(100) for _ in range(5)]})
    db.execute("insert or replace into kv values (?, ?, ?)", (k, v, i))
    cache[k] = (v, i)
    if len(cache) > 15000:
        for _ in range(100):
            cache.pop(next(iter(cache)))
    if i % 1000 == 0:
        db.execute("delete from kv where n < ?", (i - 30000,))
    i += 1
