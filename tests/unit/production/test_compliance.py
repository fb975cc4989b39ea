"""The product files pass the IOOS compliance-checker: CF-1.8 without any failure, ACDD-1.3 without a missing
highly recommended attribute, and only the recommended ACDD attributes the project cannot know left out.

The product is a toy run of the real production (the ``toy`` builders of this folder's ``conftest.py``: a 7 x 5
cube, an untrained tiny AtLSTM, one year), checked through the checker's Python API (offline: it uses the CF
standard-name table it ships, which the files name in ``standard_name_vocabulary``).
"""

from __future__ import annotations

import json
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import torch
from compliance_checker import runner as compliance_runner  # test dependency: pip install -e ".[test]" (make test)

from glass_sm import product
from glass_sm.production import run_production
from glass_sm.testing import make_toy_cube


pytestmark = [  # the checker's own deprecation notices (its IOOS SOS checks, not run here)
    pytest.mark.filterwarnings("ignore:The ioos_sos checker is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Passing the dataset to every single check:DeprecationWarning"),
]

CUBE_DATE = "2025-06-01"
#: ACDD-1.3 "recommended" attributes the project does not know (no e-mail, web site or publisher of the compendium;
#: no vertical coordinate: the 0-5 cm layer is in long_name/summary, the files stay time/lat/lon)
UNKNOWN_RECOMMENDED = {
    "creator_url not present", "creator_email not present", "publisher_name not present",
    "publisher_url not present", "publisher_email not present", "geospatial_vertical_min not present",
    "geospatial_vertical_max not present", "geospatial_vertical_positive not present",
    "geospatial_bounds_vertical_crs not present",
}


@pytest.fixture(scope="module")
def toy_product(tmp_path_factory, toy):
    """One year (2000) of the toy run, from a cube whose history records its build date as build_cube does."""
    root = tmp_path_factory.mktemp("compliance")
    cfg = toy.cfg(root)
    cube = make_toy_cube(7, 5, toy.START, toy.END, seed=0, n_ocean=2)
    cube.attrs["history"] = f"{CUBE_DATE} built by glass_sm.data.cube.build_cube"
    toy.write_cube(cfg, cube)
    toy.write_checkpoint(cfg, cube)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (daily,) = run_production(cfg, years=[2000], progress=False)
    finally:
        torch.set_num_threads(threads)
    return {"daily": daily, "annual": product.annual_path(daily.parent, 2000)}


def check(path: Path, out_dir: Path) -> dict:
    """``compliance-checker --test=cf:1.8 --test=acdd:1.3 <path>`` as JSON: checker -> report."""
    compliance_runner.CheckSuite.load_all_available_checkers()
    out = out_dir / f"{path.stem}.json"
    compliance_runner.ComplianceChecker.run_checker(str(path), ["cf:1.8", "acdd:1.3"], 0, "normal",
                                                    output_filename=str(out), output_format="json")
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def reports(toy_product, tmp_path_factory) -> dict:
    """The checker's report of the daily and the annual file."""
    out = tmp_path_factory.mktemp("reports")
    return {which: check(path, out) for which, path in toy_product.items()}


def failures(report: dict, priority: str) -> dict[str, list[str]]:
    """``{check name: messages}`` of the checks of one priority (``high``, ``medium``, ``low``) that lost points."""
    return {r["name"]: r["msgs"] for r in report[f"{priority}_priorities"] if r["value"][0] < r["value"][1]}


@pytest.mark.parametrize("which", ["daily", "annual"])
def test_cf_1_8_passes_every_check(reports, which):
    report = reports[which]["cf:1.8"]
    for priority in ("high", "medium", "low"):
        assert not failures(report, priority), f"{which}: CF-1.8 {priority} priority: {failures(report, priority)}"
    assert report["scored_points"] == report["possible_points"]


@pytest.mark.parametrize("which", ["daily", "annual"])
def test_acdd_1_3_misses_nothing_highly_recommended_and_only_what_the_project_cannot_know(reports, which):
    report = reports[which]["acdd:1.3"]
    assert not failures(report, "high"), f"{which}: highly recommended ACDD-1.3 missing: {failures(report, 'high')}"
    medium = failures(report, "medium")
    missing = set(medium.pop("Global Attributes", []))
    assert missing <= UNKNOWN_RECOMMENDED, f"{which}: recommended attributes missing: {missing - UNKNOWN_RECOMMENDED}"
    if which == "annual":  # one time value (1 January) for a mean over the year: time_coverage_end is 31 December
        assert [m for m in medium.pop("time_coverage_extents_match", []) if "time_coverage_end" not in m] == []
    assert not medium, f"{which}: recommended ACDD-1.3 checks failed: {medium}"
    assert not failures(report, "low")


def test_date_created_comes_from_the_inputs_not_the_clock(toy_product):
    for which, path in toy_product.items():
        with netCDF4.Dataset(path) as nc:
            assert nc.date_created == CUBE_DATE, which
            assert nc.Conventions == "CF-1.8, ACDD-1.3" and nc.product_format_version == "2"
            assert nc["sm"].coverage_content_type == "modelResult"
    with netCDF4.Dataset(toy_product["daily"]) as nc:
        flag = nc["sm_flag"]
        assert flag.dtype == np.int8 and flag._FillValue == -1 and flag.flag_masks.dtype == np.int8
        assert list(flag.flag_masks) == list(product.FLAG_BITS.values())
        assert flag.coverage_content_type == "qualityInformation"
