"""MemoryStore specifics: copies, not shared objects; expired records swept on save."""

from __future__ import annotations

from sessionkit.stores import MemoryStore, SessionRecord

NOW = 1_800_000_000.0


def test_a_loaded_record_is_a_copy() -> None:
    store = MemoryStore()
    data = {"items": [1, 2]}
    store.save("fam", SessionRecord("s", None, 0.0, None, data, NOW + 60), NOW)
    data["items"].append(3)
    loaded = store.load("fam", NOW)
    assert loaded is not None
    assert loaded.data == {"items": [1, 2]}
    assert loaded.data is not data


def test_expired_records_are_swept_on_save() -> None:
    store = MemoryStore()
    for i in range(300):
        store.save(f"old{i}", SessionRecord("s", None, 0.0, "u", None, NOW + 10), NOW)
    assert len(store) == 300
    later = NOW + 11
    for i in range(300):
        store.save(f"new{i}", SessionRecord("s", None, 0.0, "v", None, later + 60), later)
    for i in range(300):
        store.save(f"new{i}", SessionRecord("s", None, 0.0, "v", None, later + 60), later)
    # sweeps run every max(256, len) saves, so by now one has run at `later`
    assert len(store) == 300
    assert store.delete_user("u") == 0
    assert store.delete_user("v") == 300


def test_loading_an_expired_record_drops_it() -> None:
    store = MemoryStore()
    store.save("fam", SessionRecord("s", None, 0.0, "u", None, NOW + 10), NOW)
    assert store.load("fam", NOW + 10) is None
    assert len(store) == 0
    assert store.delete_user("u") == 0
