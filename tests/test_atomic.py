"""Safe outputs: checked before any work, written atomically, nothing left behind by a failed run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sodinn._atomic import OutputError, atomic_path, check_writable_output, output_folder

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def test_a_folder_output_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(OutputError, match=r"^cannot write .*out: it is a file, not a folder; choose another output_dir$"):
        check_writable_output(tmp_path / "out", kind="folder", name="output_dir")


def test_a_file_output_that_is_a_folder_is_refused(tmp_path):
    with pytest.raises(OutputError, match=r"it is a folder, not a file; choose another --output$"):
        check_writable_output(tmp_path, kind="file", name="--output")


def test_a_path_through_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match=r"cannot write .*f/a/b: .*f is a file, not a folder"):
        check_writable_output(tmp_path / "f" / "a" / "b")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_writable_output(tmp_path / "f" / "s.h5", kind="file")


def test_missing_folders_are_accepted_and_not_created(tmp_path):
    assert check_writable_output(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert check_writable_output(tmp_path / "a" / "s.h5", kind="file") == tmp_path / "a" / "s.h5"
    assert list(tmp_path.iterdir()) == []  # nothing made, no probe file left


def test_an_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="kind must be one of"):
        check_writable_output(tmp_path, kind="dir")


@pytest.mark.skipif(IS_ROOT, reason="permissions are not enforced for root")
def test_a_read_only_folder_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(OutputError, match=r"cannot write .*ro/out: permission denied in .*ro; choose another x$"):
            check_writable_output(ro / "out", name="x")
        with pytest.raises(OutputError, match="permission denied"):
            check_writable_output(ro / "s.h5", kind="file", name="x")
    finally:
        ro.chmod(0o755)


def test_a_folder_that_refuses_the_probe_is_refused(tmp_path, monkeypatch):
    """A read-only file system (or a permission os.access misses) is caught by the probe file."""

    def refuse(*args, **kwargs):
        raise OSError(30, "Read-only file system", str(tmp_path / ".sodinn-probe.xyz"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError, match=r"cannot write .*out: read-only file system \(.*\); choose another y$") as info:
        check_writable_output(tmp_path / "out", name="y")
    assert ".sodinn-probe" not in str(info.value) and "Errno" not in str(info.value)


def test_atomic_path_names_the_callers_file_not_the_temporary_one(tmp_path):
    target = tmp_path / "result.csv"
    target.mkdir()  # the rename onto a folder fails
    with pytest.raises(OutputError) as info, atomic_path(target) as tmp:
        tmp.write_text("x")
    message = str(info.value)
    assert message.startswith(f"cannot write {target}: ") and ".tmp" not in message and "Errno" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.csv"]  # no temporary file left


def test_atomic_path_in_a_folder_that_cannot_be_made(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match=r"^cannot write .*f/out\.csv: "), atomic_path(tmp_path / "f" / "out.csv"):
        pass


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_failed_run_leaves_no_folder_and_no_parents(tmp_path, error):
    out = tmp_path / "a" / "b" / "out"
    with pytest.raises(type(error)), output_folder(out) as folder:
        (folder / "product.fits").write_text("x")
        (folder / "sub").mkdir()
        (folder / "sub" / "f").write_text("y")
        raise error
    assert list(tmp_path.iterdir()) == []


def test_a_failed_run_keeps_what_was_there_before(tmp_path):
    (tmp_path / "old.fits").write_text("old")
    with pytest.raises(RuntimeError), output_folder(tmp_path):
        (tmp_path / "new.fits").write_text("new")
        raise RuntimeError
    assert [p.name for p in tmp_path.iterdir()] == ["old.fits"]
    assert (tmp_path / "old.fits").read_text() == "old"


def test_a_successful_run_keeps_everything(tmp_path):
    with output_folder(tmp_path / "out") as folder:
        (folder / "product.fits").write_text("x")
    assert (tmp_path / "out" / "product.fits").is_file()


def test_non_empty_resume_state_is_kept_and_empty_state_removed(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt), output_folder(out, resume_state=("backup",)):
        (out / "backup").mkdir()
        (out / "backup" / "epoch_1").write_text("state")
        (out / "history.csv").write_text("epoch\n")
        raise KeyboardInterrupt
    assert sorted(p.name for p in out.iterdir()) == ["backup", "history.csv"]  # resumable: kept as it was

    out2 = tmp_path / "out2"
    with pytest.raises(KeyboardInterrupt), output_folder(out2, resume_state=("backup",)):
        (out2 / "backup").mkdir()  # interrupted before the first epoch: nothing to resume from
        raise KeyboardInterrupt
    assert not out2.exists()


@settings(max_examples=25, deadline=None)
@given(before=st.sets(st.sampled_from("abcdef"), max_size=4), written=st.sets(st.sampled_from("cdefgh"), max_size=4),
       depth=st.integers(0, 2))
def test_a_failed_run_restores_the_folder_listing(before, written, depth):
    """Whatever was there, whatever the run wrote (new files or existing names), the listing is the one before."""
    with tempfile.TemporaryDirectory() as root:
        base = Path(root)
        for name in before:
            (base / name).write_text("old")
        out = base.joinpath(*["sub"] * depth) if depth else base
        with pytest.raises(RuntimeError), output_folder(out):
            for name in written:
                (out / name).write_text("new")
            raise RuntimeError
        assert sorted(p.name for p in base.iterdir()) == sorted(before)
        assert all((base / name).is_file() for name in before)
