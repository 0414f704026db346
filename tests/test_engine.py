"""The parallel engine: local pool, in-process and a real Dask LocalCluster on loopback (2 worker processes)."""

import json
import logging
import os
import time
import uuid
from pathlib import Path

import h5py
import numpy as np
import pytest

from sodinn import engine
from sodinn.datasets import make_adi_sequence
from sodinn.engine import check_scheduler, iter_jobs, map_jobs, runs_in_process, use_scheduler
from sodinn.mlar.samples import make_samples
from sodinn.mlar.store import generate_sample_file

from .conftest import small_flux_ranges, small_samples_config

# ---------------------------------------------------------------- job functions (module level: workers import them)


def _draw(seed, n):
    return np.random.default_rng(seed).standard_normal(n)


def _pid():
    return os.getpid()


def _nested(n):
    return os.getpid(), map_jobs(_pid, [() for _ in range(n)], progress=False)


def _fail(i):
    if i == 1:
        raise ArithmeticError(f"job {i} failed")
    return i


def _die_once(i, folder):
    """Job 2 kills its own worker process on its first attempt."""
    marker = Path(folder) / "died"
    if i == 2 and not marker.exists():
        marker.touch()
        os._exit(1)
    return i * 10


def _write_atomic(path, text):
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _flaky(i, seed, folder, killer):
    """Record every attempt; the ``killer`` job kills its worker on its first attempt, once a job that
    ran on the same worker has been reported to the caller (so that worker held a received result)."""
    folder = Path(folder)
    (folder / f"ran-{i}-{os.getpid()}-{uuid.uuid4().hex}").touch()
    if i == killer and not (folder / "killed").exists():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
                p.read_text() == str(os.getpid()) for p in folder.glob("reported-*")):
            time.sleep(0.02)
        reported = sorted(int(p.name.split("-")[1]) for p in folder.glob("reported-*"))
        _write_atomic(folder / "killed", json.dumps({"pid": os.getpid(), "reported": reported}))
        os._exit(1)
    time.sleep(0.05)
    return os.getpid(), _draw(seed, 4)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def client():
    """A real two-worker Dask cluster on loopback (worker processes, one thread each), closed after the module."""
    from distributed import Client, LocalCluster

    # dashboard_address=None would still bind port 8787 (and warn when it is taken): a random port instead
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster, set_as_default=False) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


@pytest.fixture(scope="module")
def synthetic(small_sequence):
    return small_sequence


CFG = small_samples_config()
_ranges = small_flux_ranges


# ---------------------------------------------------------------- checks before any work


@pytest.mark.parametrize("good", [None, "processes", "synchronous", "tcp://127.0.0.1:8786", "tls://[::1]:8786",
                                  "tcp://scheduler.example.org:8786/"])
def test_valid_schedulers(good):
    assert check_scheduler(good) == good


@pytest.mark.parametrize("bad", ["tcp://", "tcp://host", "tcp://:8786", "http://host:8786", "host:8786", "tcp://host:0",
                                 "tcp://host:99999", "tcp://host:port", "tcp://host:8786/x", "tcp://u@host:8786",
                                 "threads", ""])
def test_malformed_scheduler_is_refused_before_work(bad, tmp_path):
    with pytest.raises(ValueError, match="scheduler must be"):
        map_jobs(_die_once, [(2, str(tmp_path))], scheduler=bad, progress=False)
    assert not (tmp_path / "died").exists()


def test_bad_arguments_are_refused_before_work(tmp_path):
    jobs = [(2, str(tmp_path))]
    with pytest.raises(TypeError, match="got int"):
        map_jobs(_die_once, jobs, scheduler=8786, progress=False)
    with pytest.raises(ValueError, match="n_workers must be a positive integer"):
        map_jobs(_die_once, jobs, n_workers=0, progress=False)
    with pytest.raises(TypeError, match="module-level function"):
        map_jobs(lambda i, f: i, jobs, scheduler="synchronous", progress=False)
    with pytest.raises(TypeError, match="job 1 is a list"):
        map_jobs(_die_once, [(0, str(tmp_path)), [2, str(tmp_path)]], progress=False)
    assert not (tmp_path / "died").exists()
    with pytest.raises(ValueError, match="scheduler must be"):
        with use_scheduler("tcp:/127.0.0.1:8786"):
            pass


def test_unreachable_scheduler_is_one_clear_error(monkeypatch):
    import socket

    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(engine, "_CONNECT_TIMEOUT_S", 0.5)
    with pytest.raises(ValueError, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"):
        map_jobs(_pid, [()], scheduler=f"tcp://127.0.0.1:{port}", progress=False)


# ---------------------------------------------------------------- local


@pytest.mark.parametrize("settings", [{"scheduler": "synchronous"}, {"n_workers": 1}, {"n_workers": 2},
                                      {"scheduler": "processes"}])
def test_local_results_in_job_order_and_callbacks_in_the_caller(settings):
    jobs = [(seed, 3 + seed % 2) for seed in (5, 1, 9, 2, 7)]
    seen = []
    results = map_jobs(_draw, jobs, progress=False, on_result=lambda i, r: seen.append((i, os.getpid(), r)), **settings)
    for (seed, n), got in zip(jobs, results):
        np.testing.assert_array_equal(got, np.random.default_rng(seed).standard_normal(n))
    assert sorted(i for i, _, _ in seen) == list(range(len(jobs)))
    assert {pid for _, pid, _ in seen} == {os.getpid()}
    assert all(r is results[i] for i, _, r in seen)
    pids = set(map_jobs(_pid, [()] * 4, progress=False, **settings))
    in_process = runs_in_process(n_jobs=4, **settings)
    assert (pids == {os.getpid()}) == in_process
    assert in_process == (settings.get("scheduler") == "synchronous" or settings.get("n_workers") == 1)


def test_ordered_iteration_and_empty_job_list():
    pairs = list(iter_jobs(_draw, [(s, 2) for s in range(6)], n_workers=2, ordered=True))
    assert [i for i, _ in pairs] == list(range(6))
    assert map_jobs(_draw, [], progress=False) == []


def test_a_job_error_reaches_the_caller():
    for settings in ({"scheduler": "synchronous"}, {"n_workers": 2}):
        with pytest.raises(ArithmeticError, match="job 1 failed"):
            map_jobs(_fail, [(0,), (1,), (2,)], progress=False, **settings)


def test_jobs_inside_a_worker_run_in_that_worker():
    for outer, inner in map_jobs(_nested, [(3,), (3,)], n_workers=2, progress=False):
        assert outer != os.getpid() and inner == [outer] * 3


def test_local_pool_survives_a_killed_worker(tmp_path, caplog):
    done = []
    with caplog.at_level(logging.WARNING, logger="sodinn.engine"):
        results = map_jobs(_die_once, [(i, str(tmp_path)) for i in range(5)], n_workers=2, progress=False,
                           on_result=lambda i, r: done.append(i))
    assert results == [0, 10, 20, 30, 40]
    assert (tmp_path / "died").exists() and sorted(done) == list(range(5))
    assert "worker process died" in caplog.text


def test_use_scheduler_sets_the_default_for_a_block():
    assert engine._default.get() is None
    with use_scheduler("synchronous") as active:
        assert active == "synchronous"
        assert map_jobs(_pid, [(), ()], progress=False) == [os.getpid()] * 2
        assert runs_in_process(n_jobs=2)
        assert not runs_in_process(scheduler="processes", n_jobs=2)  # an explicit scheduler wins
    assert engine._default.get() is None


# ---------------------------------------------------------------- Dask LocalCluster


def test_dask_results_identical_to_in_process(client):
    jobs = [(seed, 5) for seed in range(7)]
    shared = np.arange(3.0)
    expected = map_jobs(_draw, jobs, scheduler="synchronous", progress=False)
    seen = []
    got = map_jobs(_draw, jobs, scheduler=client, progress=False, on_result=lambda i, r: seen.append((i, os.getpid())))
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a, b)
    assert sorted(i for i, _ in seen) == list(range(7)) and {p for _, p in seen} == {os.getpid()}
    capped = map_jobs(_draw, jobs, scheduler=client, n_workers=2, progress=False)  # at most 2 jobs in flight
    assert all(np.array_equal(a, b) for a, b in zip(expected, capped))
    pids = set(map_jobs(_pid, [()] * 6, scheduler=client, progress=False))
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    # the same object in several jobs is scattered once and arrives intact
    assert map_jobs(np.sum, [(shared,), (shared,), ((shared * 2),)], scheduler=client, progress=False) == [3.0, 3.0, 6.0]
    deadline = time.monotonic() + 10  # releases reach the scheduler asynchronously
    while client.who_has() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not client.who_has()  # nothing left on the cluster: results and scattered inputs released


def test_make_samples_on_dask_identical_to_single_process(client, synthetic):
    ranges = _ranges(synthetic)
    single = make_samples(synthetic, CFG, flux_ranges=ranges, n_jobs=1, progress=False)
    with use_scheduler(client):
        distributed = make_samples(synthetic, CFG, flux_ranges=ranges, progress=False)
    assert len(single.annuli) >= 2 and [a.index for a in distributed.annuli] == [a.index for a in single.annuli]
    for name in ("samples", "labels", "annulus"):
        np.testing.assert_array_equal(getattr(distributed, name), getattr(single, name))
    for a, b in zip(single.annuli, distributed.annuli):
        for name in ("x", "y", "flux", "group", "augmented", "ks"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_sample_file_via_scheduler_address_identical_to_single_process(client, synthetic, tmp_path):
    ranges = _ranges(synthetic)
    single = generate_sample_file(synthetic, CFG, tmp_path / "single.h5", flux_ranges=ranges, n_jobs=1, progress=False)
    address = client.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")
    with use_scheduler(address) as connected:
        assert connected is not client and connected.scheduler.address == address
        remote = generate_sample_file(synthetic, CFG, tmp_path / "dask.h5", flux_ranges=ranges, progress=False)
    assert connected.status == "closed"
    with h5py.File(single) as a, h5py.File(remote) as b:
        names = [k for k in a if isinstance(a[k], h5py.Dataset)]
        assert "samples" in names and names == [k for k in b if isinstance(b[k], h5py.Dataset)]
        for k in names:
            np.testing.assert_array_equal(a[k][()], b[k][()], err_msg=k)
        assert a.attrs["config_sha256"] == b.attrs["config_sha256"]


def test_dask_worker_killed_mid_run_loses_no_finished_work(client, tmp_path):
    n, killer = 8, 7
    jobs = [(i, 100 + i, str(tmp_path), killer) for i in range(n)]

    def report(i, result):  # the caller persists each finished job at once
        _write_atomic(tmp_path / f"reported-{i}", str(result[0]))

    t0 = time.monotonic()
    results = map_jobs(_flaky, jobs, scheduler=client, progress=False, on_result=report)
    assert time.monotonic() - t0 < 60
    for i, (_, values) in enumerate(results):  # every result came back, correct
        np.testing.assert_array_equal(values, _draw(100 + i, 4))
    killed = json.loads((tmp_path / "killed").read_text())
    runs = {i: [p.name.split("-")[2] for p in tmp_path.glob(f"ran-{i}-*")] for i in range(n)}
    assert len(runs[killer]) == 2 and str(killed["pid"]) in runs[killer]  # killed once, then redone
    assert killed["reported"], "no job was reported before the kill"
    # the dead worker held results already received: they were not recomputed
    assert any(runs[i] == [str(killed["pid"])] for i in killed["reported"])
    for i in killed["reported"]:
        assert len(runs[i]) == 1, f"job {i} was reported before the kill but ran {len(runs[i])} times"
    client.wait_for_workers(2, timeout=30)  # the nanny restarted the worker


def test_samples_command_on_a_cluster_address_and_engine_table(client, tmp_path, capsys):
    from sodinn.adi.io import write_fits
    from sodinn.cli import main

    data = make_adi_sequence(n_frames=20, size_px=45, fwhm_px=4.0, field_rotation_deg=70.0, seed=8)
    for name, arr in (("cube", data.cube), ("angles", data.angles_deg), ("psf", data.psf)):
        write_fits(tmp_path / f"{name}.fits", arr)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[data]\ncube = "cube.fits"\nangles = "angles.fits"\npsf = "psf.fits"\nfwhm_px = 4.0\n'
                   f'[samples]\npatch_px = 9\nn_ranks = 6\nsamples_per_annulus = 10\noracle_azimuths = 1\n'
                   f'[engine]\nscheduler = "{client.scheduler.address}"\n')
    assert main(["samples", "-c", str(cfg), "-o", str(tmp_path / "dask.h5"), "-q"]) == 0  # [engine] scheduler
    assert main(["samples", "-c", str(cfg), "-o", str(tmp_path / "local.h5"), "--scheduler", "synchronous", "-q"]) == 0
    with h5py.File(tmp_path / "dask.h5") as a, h5py.File(tmp_path / "local.h5") as b:
        np.testing.assert_array_equal(a["samples"][()], b["samples"][()])
        np.testing.assert_array_equal(a["group"][()], b["group"][()])
    capsys.readouterr()
    assert main(["samples", "-c", str(cfg), "-o", str(tmp_path / "x.h5"), "--scheduler", "tcp://host"]) == 2
    assert "scheduler must be" in capsys.readouterr().err
    cfg.write_text(cfg.read_text().replace(f'"{client.scheduler.address}"', '"tcp:/typo:1"'))
    assert main(["samples", "-c", str(cfg), "-o", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sodinn samples: error: scheduler must be") and err.count("\n") == 1
    cfg.write_text(cfg.read_text().replace('scheduler = "tcp:/typo:1"', "n_workers = 0"))
    assert main(["samples", "-c", str(cfg), "-o", str(tmp_path / "x.h5")]) == 2
    assert "must be a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "x.h5.parts").exists()
