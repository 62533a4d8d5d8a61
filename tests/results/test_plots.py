"""Tests of the quick-look plots on a tiny fake run directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cosinter.results.plots import plot_metrics, plot_profiles, plot_run
from cosinter.results.writers import CsvTable

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _fake_run(run: Path) -> None:
    x = np.linspace(0.0, 100e-9, 6)
    profiles = CsvTable(run / "profiles.csv", ["frame", "time_s", "T_K", "x_m", "Li", "La", "eta"])
    metrics = CsvTable(
        run / "metrics.csv",
        [
            "frame",
            "time_s",
            "T_K",
            "inventory_Li_coating",
            "inventory_La_cathode",
            "crossed_Li",
            "depth_La",
            "ASR_ohm_m2",
            "onset_note",
            "empty_metric",
        ],
    )
    for f, (t, T) in enumerate([(0.0, 298.15), (60.0, 800.0), (120.0, 1300.0)]):
        li = 49.3e3 * np.exp(-x / (10e-9 * (f + 1)))
        profiles.add_rows((f, t, T, xi, ci, 1e3 * f, 0.1 * f) for xi, ci in zip(x, li, strict=True))
        metrics.add_rows([(f, t, T, 1e-6 * f, 2e-6, 1e-7 * f, 5e-9 * f, 1e-4, "text", "nan")])


def _assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 100
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_plot_run_writes_pngs(tmp_path: Path) -> None:
    _fake_run(tmp_path)
    written = plot_run(tmp_path)
    names = sorted(p.name for p in written)
    assert names == sorted(
        [
            "profile_Li.png",
            "profile_La.png",
            "profile_eta.png",
            "metrics_inventory.png",
            "metrics_crossed.png",
            "metrics_depth.png",
            "metrics_ASR_ohm_m2.png",
        ]
    )
    for p in written:
        assert p.parent == tmp_path / "plots"
        _assert_png(p)
    assert [p for p in (tmp_path / "plots").iterdir() if p.name.startswith(".")] == []


def test_out_dir_and_missing_files(tmp_path: Path) -> None:
    _fake_run(tmp_path)
    out = tmp_path / "elsewhere"
    assert all(p.parent == out for p in plot_profiles(tmp_path, out) + plot_metrics(tmp_path, out))
    (tmp_path / "metrics.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"metrics\.csv"):
        plot_run(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"profiles\.csv"):
        plot_profiles(tmp_path / "nope")
