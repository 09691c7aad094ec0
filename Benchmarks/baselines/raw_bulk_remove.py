"""B11's baseline: what `syncctl remove COLLECTION -` does with ids from stdin, as plain Python over
its sqlite3 module (C underneath): read the whitespace-separated ids from stdin, check each is a
canonical decimal below 2^64, then in one transaction write the same rows our store writes for each
(the op, the local view, the log line; the rows of RawStore's raw-rows engine), with the same schema
(the embedded migrations, so the same indexes) and PRAGMAs (WAL, synchronous=NORMAL, foreign keys),
and print the same {"queued":[...]} document on stdout. Run as its own process, like ours, so the
wall time and peak RSS (wait4) of both include reading the input and writing the output.

    python3 raw_bulk_remove.py --db PATH --collection custom-1 < ids.txt > queued.json
"""
import argparse
import glob
import os
import sqlite3
import sys
import time

SCHEMA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "Schema")
MAX = 18446744073709551615


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--collection", required=True)
    args = parser.parse_args()

    ids = []
    seen = set()
    for token in sys.stdin.buffer.read().split():  # bytes.split(): any ASCII whitespace
        if not token.isdigit() or token[0] == 0x30 or len(token) > 20 or int(token) > MAX:
            sys.exit(f"invalid tweet id {token[:64]!r}")
        if token not in seen:  # a repeated id counts once, as in our store
            seen.add(token)
            ids.append(token.decode())
    if not ids:
        sys.exit("no tweet ids on standard input")

    db = sqlite3.connect(args.db, isolation_level=None)
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    for path in sorted(glob.glob(os.path.join(SCHEMA, "[0-9]*.sql"))):
        with open(path) as script:
            db.executescript(script.read())
    now = int(time.time() * 1000)
    db.execute("INSERT INTO replica (singleton, replica_id, hlc, created_at) VALUES (1, 'baseline', 0, ?)", (now,))

    collection = args.collection
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT OR IGNORE INTO collections (id, created_at) VALUES (?, ?)", (collection, now))
    # A fresh database: the ops are numbered 1...n, and their log lines carry those numbers.
    db.executemany("INSERT INTO ops (id, collection_id, tweet_id, kind, state, hlc, created_at) "
                   "VALUES (?, ?, ?, 'remove', 'pending', ?, ?)",
                   ((n, collection, tweet, 2 * n - 1, now) for n, tweet in enumerate(ids, 1)))
    db.executemany("INSERT INTO entries (collection_id, tweet_id, present) VALUES (?, ?, 0) "
                   "ON CONFLICT (collection_id, tweet_id) DO UPDATE SET present = excluded.present",
                   ((collection, tweet) for tweet in ids))
    db.executemany("INSERT INTO log (hlc, replica_id, collection_id, tweet_id, event, op_id, detail) "
                   "VALUES (?, 'baseline', ?, ?, 'local_write', ?, 'remove')",
                   ((2 * n, collection, tweet, n) for n, tweet in enumerate(ids, 1)))
    db.execute("COMMIT")
    db.close()

    out = sys.stdout
    out.write('{"queued":[')
    for n, tweet in enumerate(ids, 1):
        out.write(f'{"," if n > 1 else ""}{{"id":{n},"op":"remove","collection_id":"{collection}","tweet_id":"{tweet}"}}')
    out.write("]}\n")


if __name__ == "__main__":
    main()
