# A key-value server workload: drives a redis-server with a pipelined mix of SET (some with an
# expiry), GET, INCR, LPUSH+LTRIM, HSET, DEL and EXPIRE over a key space of 100k string keys,
# 20k hashes, 5k lists and 10k counters, with values of varied sizes (16 B .. 4 KiB, mostly small,
# JSON-like text), so the server's jemalloc heap churns. Speaks raw RESP over a socket (no client
# library needed); prints "preloaded" once the key space exists, then runs until killed.
#
# Run (Redis 7, persistence off so the server never forks):
#   redis-server --port 6390 --save "" --appendonly no &
#   python3 scripts/workloads/redis_churn.py --port 6390
import argparse, random, socket, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--port", type=int, default=6379)
ap.add_argument("--keys", type=int, default=100_000)
ap.add_argument("--hashes", type=int, default=20_000)
ap.add_argument("--lists", type=int, default=5_000)
ap.add_argument("--counters", type=int, default=10_000)
ap.add_argument("--batch", type=int, default=200, help="commands per pipeline round trip")
ap.add_argument("--seed", type=int, default=1)
args = ap.parse_args()
rnd = random.Random(args.seed)

sock = socket.create_connection((args.host, args.port))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
rbuf = bytearray()


def cmd(*parts):
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        if not isinstance(p, bytes):
            p = str(p).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(p), p))
    return b"".join(out)


def fill(n):
    """Make sure rbuf holds at least n bytes."""
    while len(rbuf) < n:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise SystemExit("server closed the connection")
        rbuf.extend(chunk)


def skip_reply(pos):
    """Return the position after the reply starting at pos (reading more as needed)."""
    while True:
        end = rbuf.find(b"\r\n", pos)
        if end >= 0:
            break
        fill(len(rbuf) + 1)
    kind, line = rbuf[pos], bytes(rbuf[pos + 1:end])
    pos = end + 2
    if kind == ord("-"):
        raise SystemExit("redis error: " + line.decode())
    if kind == ord("$"):
        n = int(line)
        if n >= 0:
            fill(pos + n + 2)
            pos += n + 2
    elif kind == ord("*"):
        for _ in range(max(int(line), 0)):
            pos = skip_reply(pos)
    return pos


def run(batch):
    sock.sendall(b"".join(batch))
    pos = 0
    for _ in batch:
        pos = skip_reply(pos)
    del rbuf[:pos]


WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
         "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()
CITIES = ["Berlin", "Lagos", "Lima", "Osaka", "Perth", "Quito", "Seoul", "Tunis", "Oslo", "Pune"]


def value_size():
    r = rnd.random()
    if r < 0.55:
        return rnd.randint(16, 128)
    if r < 0.85:
        return rnd.randint(128, 512)
    if r < 0.97:
        return rnd.randint(512, 2048)
    return rnd.randint(2048, 4096)


def make_value(k, tick):
    size = value_size()
    head = '{"id":%d,"tick":%d,"user":"user%d","city":"%s","score":%d,"note":"' % (
        k, tick, k, rnd.choice(CITIES), rnd.randrange(100000))
    body = []
    n = len(head) + 2
    while n < size:
        w = rnd.choice(WORDS) if rnd.random() < 0.8 else "%08x" % rnd.getrandbits(32)
        body.append(w)
        n += len(w) + 1
    return (head + " ".join(body) + '"}')[:max(size, 16)].encode()


def skey(k):
    return b"key:%d" % k


def preload():
    batch = []
    for k in range(args.keys):
        batch.append(cmd(b"SET", skey(k), make_value(k, 0)))
        if len(batch) >= 1000:
            run(batch); batch = []
    for h in range(args.hashes):
        batch.append(cmd(b"HSET", b"user:%d" % h, b"name", b"user%d" % h, b"city", rnd.choice(CITIES),
                         b"visits", rnd.randrange(1000), b"last", int(time.time())))
        if len(batch) >= 1000:
            run(batch); batch = []
    for c in range(args.counters):
        batch.append(cmd(b"SET", b"ctr:%d" % c, rnd.randrange(1000)))
    for l in range(args.lists):
        batch.append(cmd(b"LPUSH", b"feed:%d" % l, *[make_value(l, 0)[:64] for _ in range(8)]))
        if len(batch) >= 1000:
            run(batch); batch = []
    if batch:
        run(batch)


preload()
print("preloaded", flush=True)

tick = 0
ops = 0
t0 = time.time()
while True:
    batch = []
    for _ in range(args.batch):
        tick += 1
        r = rnd.random()
        k = int(rnd.paretovariate(1.2)) % args.keys if rnd.random() < 0.5 else rnd.randrange(args.keys)
        if r < 0.35:
            batch.append(cmd(b"GET", skey(k)))
        elif r < 0.55:
            batch.append(cmd(b"SET", skey(k), make_value(k, tick)))
        elif r < 0.60:
            batch.append(cmd(b"SET", skey(k), make_value(k, tick), b"EX", rnd.randint(1, 30)))
        elif r < 0.70:
            batch.append(cmd(b"INCR", b"ctr:%d" % rnd.randrange(args.counters)))
        elif r < 0.78:
            l = rnd.randrange(args.lists)
            batch.append(cmd(b"LPUSH", b"feed:%d" % l, make_value(l, tick)[:rnd.randint(16, 200)]))
            batch.append(cmd(b"LTRIM", b"feed:%d" % l, 0, 31))
        elif r < 0.90:
            h = rnd.randrange(args.hashes)
            batch.append(cmd(b"HSET", b"user:%d" % h, b"visits", tick, b"last", int(time.time()),
                             b"f%d" % rnd.randrange(12), make_value(h, tick)[:rnd.randint(8, 120)]))
        elif r < 0.96:
            batch.append(cmd(b"DEL", skey(k)))
        else:
            batch.append(cmd(b"EXPIRE", skey(k), rnd.randint(1, 60)))
    run(batch)
    ops += len(batch)
    if ops % 200_000 < args.batch:
        print("ops %d, %.0f/s" % (ops, ops / (time.time() - t0)), file=sys.stderr, flush=True)
