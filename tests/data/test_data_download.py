"""Downloads against a local HTTP server: md5 checks, mirror fallback, atomic writes."""

from __future__ import annotations

import hashlib
import time

import pytest

from caviar.core.errors import InvalidValue
from caviar.data import DownloadError, cache_root
from caviar.data.download import check_md5, ensure_file, md5_file

GOOD = b"the right bytes\n" * 1000
BAD = b"the wrong bytes\n" * 1000
GOOD_MD5 = hashlib.md5(GOOD).hexdigest()
BAD_MD5 = hashlib.md5(BAD).hexdigest()
NAME = "file.gz"


def test_md5_file_matches_known_digests(tmp_path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "abc").write_bytes(b"abc")
    # RFC 1321 test suite
    assert md5_file(tmp_path / "empty") == "d41d8cd98f00b204e9800998ecf8427e"
    assert md5_file(tmp_path / "abc") == "900150983cd24fb0d6963f7d28e17f72"


def test_check_md5_names_both_digests(tmp_path) -> None:
    (tmp_path / "abc").write_bytes(b"abc")
    check_md5(tmp_path / "abc", "900150983cd24fb0d6963f7d28e17f72")
    with pytest.raises(
        InvalidValue, match=r"abc: md5 must be 0{32}, got 900150983cd24fb0d6963f7d28e17f72"
    ):
        check_md5(tmp_path / "abc", "0" * 32)


def test_download_writes_the_file_and_nothing_else(mirrors, tmp_path) -> None:
    mirrors.put("a", NAME, GOOD)
    folder = tmp_path / "cache" / "ds"
    path = ensure_file(NAME, folder, GOOD_MD5, [mirrors.url("a")])
    assert path == folder / NAME
    assert path.read_bytes() == GOOD
    assert sorted(p.name for p in folder.iterdir()) == [NAME]


def test_good_cached_file_is_not_downloaded_again(mirrors, tmp_path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / NAME).write_bytes(GOOD)
    ensure_file(NAME, folder, GOOD_MD5, [mirrors.url("a")])
    assert mirrors.requests == []


@pytest.mark.parametrize("stale", [BAD, GOOD[:100]], ids=["corrupt", "partial"])
def test_bad_cached_file_is_replaced(mirrors, tmp_path, stale) -> None:
    mirrors.put("a", NAME, GOOD)
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / NAME).write_bytes(stale)
    ensure_file(NAME, folder, GOOD_MD5, [mirrors.url("a")])
    assert (folder / NAME).read_bytes() == GOOD
    assert mirrors.requests == [f"/a/{NAME}"]


def test_wrong_bytes_fall_back_to_next_mirror(mirrors, tmp_path) -> None:
    mirrors.put("bad", NAME, BAD)
    mirrors.put("good", NAME, GOOD)
    folder = tmp_path / "cache"
    ensure_file(NAME, folder, GOOD_MD5, [mirrors.url("bad"), mirrors.url("good")])
    assert (folder / NAME).read_bytes() == GOOD
    assert mirrors.requests == [f"/bad/{NAME}", f"/good/{NAME}"]
    assert sorted(p.name for p in folder.iterdir()) == [NAME]


def test_missing_file_falls_back_to_next_mirror(mirrors, tmp_path) -> None:
    mirrors.put("good", NAME, GOOD)
    ensure_file(NAME, tmp_path / "c", GOOD_MD5, [mirrors.url("gone"), mirrors.url("good")])
    assert (tmp_path / "c" / NAME).read_bytes() == GOOD


def test_all_mirrors_bad_is_a_clear_error_and_leaves_nothing(mirrors, tmp_path) -> None:
    mirrors.put("bad", NAME, BAD)
    folder = tmp_path / "cache"
    urls = [mirrors.url("bad"), mirrors.url("gone")]
    with pytest.raises(DownloadError) as info:
        ensure_file(NAME, folder, GOOD_MD5, urls)
    message = str(info.value)
    assert str(folder / NAME) in message
    assert f"md5 must be {GOOD_MD5}, got {BAD_MD5}" in message
    assert urls[0] + NAME in message and urls[1] + NAME in message
    assert "404" in message
    assert list(folder.iterdir()) == []


def test_interrupted_download_leaves_no_file(mirrors, tmp_path) -> None:
    mirrors.put("a", NAME, GOOD)
    mirrors.cut[f"/a/{NAME}"] = 5000
    folder = tmp_path / "cache"
    with pytest.raises(DownloadError, match=f"closed after 5000 of {len(GOOD)} bytes"):
        ensure_file(NAME, folder, GOOD_MD5, [mirrors.url("a")])
    assert list(folder.iterdir()) == []


def test_interrupted_download_falls_back_to_next_mirror(mirrors, tmp_path) -> None:
    mirrors.put("a", NAME, GOOD)
    mirrors.put("b", NAME, GOOD)
    mirrors.cut[f"/a/{NAME}"] = 5000
    ensure_file(NAME, tmp_path / "c", GOOD_MD5, [mirrors.url("a"), mirrors.url("b")])
    assert (tmp_path / "c" / NAME).read_bytes() == GOOD


def test_silent_mirror_times_out(mirrors, tmp_path) -> None:
    mirrors.put("slow", NAME, GOOD)
    mirrors.stall.add(f"/slow/{NAME}")
    start = time.perf_counter()
    with pytest.raises(DownloadError, match="timed out"):
        ensure_file(NAME, tmp_path / "c", GOOD_MD5, [mirrors.url("slow")], timeout=0.2)
    assert time.perf_counter() - start < 1.5


def test_no_download_means_an_error_not_a_fetch(mirrors, tmp_path) -> None:
    mirrors.put("a", NAME, GOOD)
    folder = tmp_path / "cache"
    with pytest.raises(InvalidValue, match=r"file\.gz: is missing and download=False"):
        ensure_file(NAME, folder, GOOD_MD5, [mirrors.url("a")], download=False)
    folder.mkdir()
    (folder / NAME).write_bytes(BAD)
    with pytest.raises(InvalidValue, match=r"is corrupt \(wrong md5\) and download=False"):
        ensure_file(NAME, folder, GOOD_MD5, [mirrors.url("a")], download=False)
    assert mirrors.requests == []


def test_cache_root_precedence(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CAVIAR_CACHE", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"
    assert cache_root() == tmp_path / "env"
    monkeypatch.setenv("CAVIAR_CACHE", "")
    assert cache_root() == tmp_path / "xdg" / "caviar"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "caviar"
