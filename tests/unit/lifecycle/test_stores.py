"""The artifact-store contract, run over every backend (local directory, S3 via moto, memory)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from prognos.errors import ConfigError, NotFoundError
from prognos.lifecycle.stores import ArtifactStore, LocalStore, S3Store, StaleWriteError, open_store


def test_is_an_artifact_store(store: ArtifactStore) -> None:
    assert isinstance(store, ArtifactStore)


def test_read_of_a_missing_key_is_none(store: ArtifactStore) -> None:
    assert store.read("nothing/here.json") is None


def test_write_then_read_returns_data_and_the_same_tag(store: ArtifactStore) -> None:
    tag = store.write("a/b.json", b'{"x": 1}')
    blob = store.read("a/b.json")
    assert blob is not None and blob.data == b'{"x": 1}' and blob.tag == tag


def test_create_refuses_an_existing_object(store: ArtifactStore) -> None:
    store.write("index.json", b"first", create=True)
    with pytest.raises(StaleWriteError):
        store.write("index.json", b"second", create=True)
    assert store.read("index.json").data == b"first"  # type: ignore[union-attr]


def test_expect_writes_only_over_the_tag_that_was_read(store: ArtifactStore) -> None:
    t1 = store.write("index.json", b"one")
    t2 = store.write("index.json", b"two", expect=t1)
    with pytest.raises(StaleWriteError):
        store.write("index.json", b"three", expect=t1)  # t1 is stale now
    assert store.read("index.json").data == b"two"  # type: ignore[union-attr]
    store.write("index.json", b"four", expect=t2)
    assert store.read("index.json").data == b"four"  # type: ignore[union-attr]


def test_expect_on_a_missing_object_fails(store: ArtifactStore) -> None:
    with pytest.raises(StaleWriteError):
        store.write("index.json", b"x", expect="some-tag")


def test_upload_download_and_keys(store: ArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "model.onnx"
    src.write_bytes(bytes(range(256)) * 10)
    store.upload("bundles/abc/model.onnx", src)
    store.write("bundles/abc/bundle.json", b"{}")
    store.write("index.json", b"{}")
    assert store.list_keys("bundles/") == ["bundles/abc/bundle.json", "bundles/abc/model.onnx"]
    assert "index.json" in store.list_keys()
    dst = tmp_path / "copy.onnx"
    store.download("bundles/abc/model.onnx", dst)
    assert dst.read_bytes() == src.read_bytes()


def test_download_of_a_missing_key_is_not_found(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no-such"):
        store.download("bundles/no-such/model.onnx", tmp_path / "x")


def test_only_one_of_many_racing_conditional_writers_wins(store: ArtifactStore) -> None:
    tag = store.write("index.json", b"base")
    wins: list[int] = []
    losses: list[int] = []
    barrier = threading.Barrier(6)

    def writer(i: int) -> None:
        barrier.wait()
        try:
            store.write("index.json", f"writer {i}".encode(), expect=tag)
            wins.append(i)
        except StaleWriteError:
            losses.append(i)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 5
    assert store.read("index.json").data == f"writer {wins[0]}".encode()  # type: ignore[union-attr]


def test_keys_that_escape_the_store_are_refused(store: ArtifactStore) -> None:
    for bad in ("../etc/passwd", "/abs", "a//b", ""):
        with pytest.raises(ValueError, match="invalid store key"):
            store.write(bad, b"x")


def test_local_writes_leave_no_temp_files(tmp_path: Path) -> None:
    s = LocalStore(tmp_path / "reg")
    for i in range(5):
        s.write("index.json", str(i).encode(), expect=s.read("index.json").tag if i else None, create=i == 0)  # type: ignore[union-attr]
    names = sorted(p.name for p in (tmp_path / "reg").iterdir())
    assert names == [".lock", "index.json"]


def test_open_store_parses_locations(tmp_path: Path) -> None:
    local = open_store(tmp_path / "reg")
    assert isinstance(local, LocalStore) and local.root == tmp_path / "reg"
    s3 = open_store("s3://my-bucket/some/prefix/", s3_client=object())
    assert isinstance(s3, S3Store) and s3.bucket == "my-bucket" and s3.prefix == "some/prefix"
    assert s3.url == "s3://my-bucket/some/prefix"
    with pytest.raises(ConfigError, match="no bucket"):
        open_store("s3:///prefix", s3_client=object())
    with pytest.raises(ConfigError, match="gs://x"):
        open_store("gs://x/y")


def test_a_missing_bucket_is_one_store_error(s3_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from prognos.lifecycle.stores import StoreError

    s = S3Store("no-such-bucket-here", "reg", s3_client)
    src = tmp_path / "f"
    src.write_bytes(b"x")
    for call in (lambda: s.read("index.json"), lambda: s.write("index.json", b"{}", create=True),
                 lambda: s.upload("bundles/a/f", src), s.list_keys):
        with pytest.raises(StoreError, match=r"s3://no-such-bucket-here/reg.*NoSuchBucket"):
            call()


def test_an_unusable_directory_is_one_store_error(tmp_path: Path) -> None:
    from prognos.lifecycle.stores import StoreError

    (tmp_path / "file").write_text("not a directory")
    s = LocalStore(tmp_path / "file" / "registry")
    with pytest.raises(StoreError, match="cannot"):
        s.write("index.json", b"{}", create=True)
    with pytest.raises(StoreError, match="cannot write the registry there"):
        s.write("index.json", b"{}")
