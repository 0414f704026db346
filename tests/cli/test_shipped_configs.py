"""Every configuration file shipped in ``configs/`` is one the commands accept: known keys, valid settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from sodinn.cli.commands import TABLES, _check_tables
from sodinn.config import LimitConfig, RocConfig, load_toml

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.toml"))
#: Keys of the [roc] and [limits] tables that are not settings of their dataclass (the commands pop them first)
_NOT_SETTINGS = ("models", "output")


def _pipeline_config(path: Path) -> bool:
    return not {"survey", "targets"} & set(load_toml(path))  # survey files have their own loader (tests/pipeline/test_survey.py)


@pytest.mark.parametrize("path", [p for p in CONFIGS if _pipeline_config(p)], ids=lambda p: p.name)
def test_a_shipped_configuration_is_valid_for_its_commands(path):
    cfg = load_toml(path)
    _check_tables(cfg, str(path))  # unknown keys would be refused by every command
    for section, (cls, extra) in TABLES.items():
        if cls is not None and section in cfg:
            cls.from_dict({k: v for k, v in cfg[section].items() if k not in extra})
    for section, cls in (("roc", RocConfig), ("limits", LimitConfig)):
        if section in cfg:
            cls.from_dict({k: v for k, v in cfg[section].items() if k not in _NOT_SETTINGS})


def test_the_ablation_configuration_names_each_variant_once_and_the_report_copies():
    cfg = load_toml(Path(__file__).resolve().parents[2] / "configs" / "naco_ablation.toml")
    report = load_toml(Path(__file__).resolve().parents[2] / "configs" / "naco_betapic_roc.toml")
    names = [spec.partition("=")[0] for spec in cfg["roc"]["models"]]
    assert len(set(names)) == len(names) >= 5
    header = (Path(__file__).resolve().parents[2] / "configs" / "naco_ablation.toml").read_text().split("[data]")[0]
    for spec in cfg["roc"]["models"]:  # every variant is made by a command the file states
        assert f"-o {spec.partition('=')[2].removeprefix('../')} " in header, spec
    same = {k: v for k, v in report["roc"].items() if k not in _NOT_SETTINGS}
    assert {k: cfg["roc"][k] for k in same} == same  # the same copies, fluxes and baselines as the NACO report
    assert cfg["samples"]["snr_range"] == [0.5, 2.0]


def test_the_held_out_configuration_is_the_default_one_on_the_cube_without_beta_pic_b():
    """configs/naco_heldout.toml (issue 14's held-out check): the default NACO settings on the cube without beta Pic b."""
    root = Path(__file__).resolve().parents[2]
    held_out = load_toml(root / "configs" / "naco_heldout.toml")
    default = load_toml(root / "configs" / "naco_betapic.toml")
    assert held_out["data"]["cube"] == "../out/naco_heldout/cube.fits"  # written by bench/naco_heldout.py
    assert {k: v for k, v in default["samples"].items() if k != "output"} == {
        k: v for k, v in held_out["samples"].items() if k != "output"}  # beta Pic b's residual masked as b is
    assert held_out["train"]["model"] == default["train"]["model"]
    assert held_out["roc"]["known_sources_xy"] == default["roc"]["known_sources_xy"]
    assert {k: held_out["data"][k] for k in ("pixel_scale_arcsec", "star_flux")} == {
        k: default["data"][k] for k in ("pixel_scale_arcsec", "star_flux")}
    assert held_out["roc"]["copies_per_band"] * len(held_out["roc"]["bands_lambda_d"]) == 120  # as the check
