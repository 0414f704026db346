"""The ``sodinn`` parser and entry point: help, version, exit statuses, one-line errors, flags tied to settings."""

import subprocess
import sys
from pathlib import Path

import pytest

import sodinn
from sodinn.cli import main
from sodinn.cli.commands import FLAGS, TABLES
from sodinn.cli.main import build_parser
from sodinn.config import (
    DataConfig,
    EngineConfig,
    LimitConfig,
    PredictConfig,
    ReduceConfig,
    RocConfig,
    SampleConfig,
    TrainConfig,
    field_names,
)

SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "models" / "synthetic-sodinn-k10-p9"

#: The settings dataclass of each table of a configuration file
CLASSES = {"data": DataConfig, "reduce": ReduceConfig, "samples": SampleConfig, "train": TrainConfig,
           "predict": PredictConfig, "roc": RocConfig, "limits": LimitConfig, "engine": EngineConfig}
#: The keys of paths a table holds besides its dataclass fields
PATH_KEYS = {"data": (), "reduce": ("output",), "samples": ("output",), "train": ("samples", "output"),
             "predict": ("model", "output"), "engine": ()}
#: The least arguments each command parses with
COMMANDS = {"demo": [], "info": ["x.fits"], "reduce": [], "samples": [], "train": [], "predict": [], "roc": [],
            "limits": [], "survey": ["survey.toml"], "convert": ["-o", "out"]}


def test_help_and_version(capsys):
    assert main([]) == 0
    assert "demo" in capsys.readouterr().out
    for cmd in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            main([cmd, "--help"])
        assert exit_info.value.code == 0
        assert "usage: sodinn " + cmd in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"sodinn {sodinn.__version__}\n"


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["reduce", "--cube", str(tmp_path / "missing.fits"), "--angles", "a", "--psf", "p"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sodinn reduce: error: FITS file not found") and "\n" not in err
    assert main(["reduce", "--cube", "c.fits"]) == 2
    assert "missing input(s): angles, psf" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    assert main(["reduce", "--config", str(bad)]) == 2
    assert "is not valid TOML" in capsys.readouterr().err
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[training]\nepochs = 3\n")
    assert main(["reduce", "--config", str(unknown)]) == 2
    assert "unknown section(s) training" in capsys.readouterr().err


def test_console_script_exit_code(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sodinn.cli", "info", str(tmp_path / "nope.fits")], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"sodinn info: error: no such file or folder: {tmp_path / 'nope.fits'}"
    assert "Traceback" not in proc.stderr


def test_a_closed_pipe_ends_quietly():
    """`sodinn info ... | head`: the reader goes away; no error message, the usual SIGPIPE status."""
    argv = [sys.executable, "-m", "sodinn.cli", "info", "--json", *[str(SHIPPED_MODEL)] * 300]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(100).startswith(b'{"folder"')
        proc.stdout.close()
        assert proc.stderr.read() == b"" and proc.wait() == 141



def _destinations() -> dict[str, set[str]]:
    """The argparse destinations of each command (read from the namespace of its least command line)."""
    parser = build_parser()
    return {cmd: set(vars(parser.parse_args([cmd, *args]))) for cmd, args in COMMANDS.items()}


def test_every_command_is_known_to_the_parser():
    dests = _destinations()
    assert all({"command", "func", "quiet", "verbose"} <= d for d in dests.values())
    assert {cmd: vars(build_parser().parse_args([cmd, *args]))["command"] for cmd, args in COMMANDS.items()} == {
        cmd: cmd for cmd in COMMANDS}


def test_every_flag_sets_a_field_of_its_dataclass():
    assert set(FLAGS) == set(CLASSES)
    for table, mapping in FLAGS.items():
        fields = set(field_names(CLASSES[table]))
        unknown = sorted(set(mapping.values()) - fields)
        assert not unknown, f"FLAGS[{table!r}] names {unknown}, not fields of {CLASSES[table].__name__}"


def test_every_flag_destination_is_an_argument_of_a_command():
    dests = _destinations()
    everywhere = set().union(*dests.values())
    for table, mapping in FLAGS.items():
        missing = sorted(set(mapping) - everywhere)
        assert not missing, f"FLAGS[{table!r}]: no command has the argument(s) {missing}"
    # the commands that read a table take all its flags
    for command in ("reduce", "samples", "predict", "roc", "limits", "convert"):
        assert set(FLAGS["data"]) <= dests[command], command
    for command in ("samples", "roc", "limits"):
        assert set(FLAGS["engine"]) <= dests[command], command
    for table in ("reduce", "samples", "train", "predict", "roc", "limits"):
        assert set(FLAGS[table]) <= dests[table], table


def test_a_flag_reaches_its_destination():
    parser = build_parser()
    args = parser.parse_args(["samples", "--patch", "7", "--ranks", "4", "--per-annulus", "10", "--mask", "1", "2",
                              "--mask", "3", "4", "--seed", "9", "-j", "2", "--pixel-scale", "0.01", "--fwhm", "4.5"])
    assert (args.patch, args.ranks, args.per_annulus, args.seed, args.jobs) == (7, 4, 10, 9, 2)
    assert args.mask == [[1.0, 2.0], [3.0, 4.0]] and (args.pixel_scale, args.fwhm) == (0.01, 4.5)
    args = parser.parse_args(["train", "--batch-size", "16", "--random-split", "--model", "sodirf", "--precision",
                              "mixed_bfloat16"])
    assert (args.batch_size, args.random_split, args.model, args.precision) == (16, True, "sodirf", "mixed_bfloat16")


def test_tables_allow_the_dataclass_fields_and_their_path_keys():
    assert set(TABLES) == set(CLASSES)
    assert TABLES["roc"] == (None, ())  # RocConfig.from_dict checks [roc] in its command (with models and output)
    assert TABLES["limits"] == (None, ())  # LimitConfig.from_dict checks [limits] in its command (with models and output)
    for table, keys in PATH_KEYS.items():
        cls, extra = TABLES[table]
        assert cls is CLASSES[table], table
        assert tuple(extra) == keys, table


@pytest.mark.parametrize("table", sorted(PATH_KEYS))
def test_an_unknown_key_names_the_known_ones(tmp_path, capsys, table):
    config = tmp_path / "c.toml"
    config.write_text(f"[{table}]\nnot_a_setting = 1\n")
    assert main(["reduce", "--config", str(config)]) == 2
    known = ", ".join(sorted({*field_names(CLASSES[table]), *PATH_KEYS[table]}))
    assert capsys.readouterr().err == (f"sodinn reduce: error: {config}: unknown key(s) in [{table}]: not_a_setting; "
                                       f"known: {known}\n")
