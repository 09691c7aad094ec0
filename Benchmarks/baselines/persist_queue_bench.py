"""B1's second baseline: persist-queue's SQLiteAckQueue, the durable SQLite queue a Python
developer would pick, with its defaults. Puts `count` items one call each (auto-commit: one
transaction per put), then drains them with get + ack. Prints one JSON object."""
import argparse
import json
import time

import persistqueue


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()

    queue = persistqueue.SQLiteAckQueue(args.dir, auto_commit=True, multithreading=False)
    items = [{"kind": "remove", "collection": "custom-1000", "tweet": str(100_000_000 + i)} for i in range(args.count)]

    start = time.perf_counter()
    for item in items:
        queue.put(item)
    put_seconds = time.perf_counter() - start

    start = time.perf_counter()
    for _ in range(args.count):
        queue.ack(queue.get(block=False))
    ack_seconds = time.perf_counter() - start

    print(json.dumps({"ops": args.count, "put_per_s": args.count / put_seconds,
                      "get_ack_per_s": args.count / ack_seconds}))


if __name__ == "__main__":
    main()
