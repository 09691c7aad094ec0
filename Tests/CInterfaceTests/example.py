"""collection-sync from Python, with the standard library only (ctypes): edit offline, watch the
view change, flush. The README's Python example; CInterfaceTests runs it against the mock.

    python3 example.py DATABASE COLLECTION_ID      # the API and credentials from the environment
"""
import ctypes
import json
import sys
import threading

lib = ctypes.CDLL("libcollectionsync.so")
out = ctypes.POINTER(ctypes.c_char)
CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)


def call(function, *args):
    """Calls a cs_ function that ends in (char **result, char **error); returns the result as JSON."""
    result, error = out(), out()
    status = function(*args, ctypes.byref(result), ctypes.byref(error))
    text = lambda p: ctypes.cast(p, ctypes.c_char_p).value.decode() if p else None
    document, message = text(result), text(error)
    lib.cs_free(result), lib.cs_free(error)
    if status != 0:
        raise RuntimeError(f"status {status}: {message}")
    return json.loads(document) if document else None


database, collection = sys.argv[1].encode(), sys.argv[2].encode()
store, engine, watching = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
assert lib.cs_store_open(database, None, ctypes.byref(store), None) == 0

views, changed = [], threading.Condition()
def on_view(_context, document):           # on a library thread
    with changed:
        views.append(json.loads(document))
        changed.notify()
on_view = CALLBACK(on_view)                # keep a reference while observing
assert lib.cs_observe_entries(store, collection, on_view, None, ctypes.byref(watching), None) == 0

assert lib.cs_engine_create(store, None, None, None, ctypes.byref(engine), None) == 0
call(lib.cs_engine_pull, engine, collection, ctypes.c_double(30))
tweets = (ctypes.c_char_p * 1)(b"102")
queued = call(lib.cs_store_remove, store, collection, tweets, ctypes.c_size_t(1))
print("queued", [op["tweet_id"] for op in queued["queued"]])
with changed:
    changed.wait_for(lambda: views and all(e["tweet_id"] != "102" for e in views[-1]["entries"]) and len(views) > 1, 30)
print("view", [entry["tweet_id"] for entry in views[-1]["entries"]])
print("flush", call(lib.cs_engine_flush, engine, ctypes.c_double(30), 0)["applied"], "applied")

lib.cs_observation_cancel(watching, None)
lib.cs_engine_destroy(engine, None)
lib.cs_store_close(store, None)
