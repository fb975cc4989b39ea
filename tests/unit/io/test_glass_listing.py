"""glass_sm.io.glass_products: the listing helpers of find_glass_files (``list_tree``, ``_product_names``) keep
exactly the files of the per-name rule, and a shared ``listing=`` gives what a fresh walk of the tree gives."""

from __future__ import annotations

import itertools
import random

import pandas as pd
import pytest

from glass_sm.io.errors import DataWarning, MissingFileError
from glass_sm.io.glass_products import _NAME, _product_names, find_glass_files, list_tree

SHORTS = ("GLASS02B05", "GLASS08B31")


def reference_names(short, names, y0=None, y1=None):
    """The per-name rule find_glass_files applied before ``_product_names`` (its definition)."""
    out = []
    for name in names:
        m = _NAME.match(name)
        if m and m.group(1).upper() == short and (y0 is None or y0 <= int(m.group(3)) <= y1):
            out.append(name)
    return out


def _generated_names() -> list[str]:
    """Both products and another GLASS one, in three cases, three extensions, several versions, years, days of
    year (valid, 366, invalid 000 and 400) and production dates; non-GLASS names; shuffled (fixed seed)."""
    cases = (str, str.lower, lambda s: s[:5].lower() + s[5:])  # as is, lowercase, mixed ("glassGLASS...")
    names = []
    for short, case, ext, ver, year, doy, prod in itertools.product(
            (*SHORTS, "GLASS09B01"), cases, (".hdf", ".HDF", ".Hdf"), ("V04", "V40", "V4", "v100"),
            (1999, 2019, 2020, 2021, 2022), ("001", "009", "366", "000", "400"), ("2019001", "2021250")):
        names.append(case(short) + f".{ver}.A{year}{doy}.{prod}" + ext)
    names += [
        "", "readme.txt", "GLASS08B31.hdf", "GLASS08B31X.V40.A2020001.2021250.hdf",  # a longer short name
        "XGLASS08B31.V40.A2020001.2021250.hdf", "GLASS08B31.V40.A2020001.2021250.hdf.bak",
        "GLASS08B31.V40.A20200001.2021250.hdf", "GLASS08B31.V40.A202001.2021250.hdf",  # 8 and 6 digits
        "GLASS08B31.V.A2020001.2021250.hdf", "GLASS08B31.V40.A2020001..hdf", "GLASS08B31.V40.A2020001.2021250.h5",
        "GLASS02B05.V04.A2020009.2019001.hdf.xml", "glass02b05.v04.a2020017.2019001.hdf",
        "GLASS08B31.V40.A2020001.2021250.hdf\r", "MOD11A1.A2020001.h09v05.061.hdf",
    ]
    random.Random(17).shuffle(names)
    return names


NAMES = _generated_names()
# names that take _product_names off its one-search path: a newline (at the end: `$` matches before it, in the
# reference too; inside: never a match), non-ASCII digits (`\d` matches them and int() reads them), a long s
# (U+017F, equal to 's' ignoring case and upper-cased to 'S')
ODD = ["GLASS08B31.V40.A2020001.2021250.hdf\n", "x\nGLASS08B31.V40.A2020002.2021250.hdf",
       "GLASS08B31.V40.A2020003.2021250.hdf\nGLASS08B31.V40.A2020004.2021250.hdf",
       "GLASS08B31.V40.A\uff12\uff10\uff12\uff10001.2021250.hdf",  # "A２０２０001": fullwidth digits
       "GLASS02B05.V04.A\u0662\u0660\u0661\u0669009.2019001.hdf",  # Arabic-Indic digits (2019)
       "GLA\u017fS08B31.V40.A2020005.2021250.hdf", "GLASS02B05.V04.A2020\uff10\uff10\uff11.2019001.hdf"]
YEARS = [(2020, 2020), (2019, 2021), (None, None)]


@pytest.mark.parametrize("y0,y1", YEARS)
@pytest.mark.parametrize("short", SHORTS)
@pytest.mark.parametrize("extra", ["ascii", "odd"])
def test_product_names_equal_the_per_name_rule(short, y0, y1, extra):
    names = NAMES if extra == "ascii" else NAMES[:200] + ODD + NAMES[200:400]
    want = reference_names(short, names, y0, y1)
    assert _product_names(short, names, y0, y1) == want
    assert _product_names(short, tuple(names), y0, y1) == want  # list_tree hands tuples
    assert len(want) > 10  # the rule keeps some names of every case here
    if extra == "odd":  # the odd names the reference keeps are kept (not only the plain ones)
        kept_odd = [n for n in ODD if n in want]
        assert kept_odd == [n for n in ODD if n in reference_names(short, ODD, y0, y1)]
        if short == "GLASS08B31":
            assert {ODD[0], ODD[3], ODD[5]} <= set(kept_odd)  # trailing newline, fullwidth year, long s


@pytest.mark.parametrize("y0,y1", YEARS)
def test_product_names_of_single_names_and_the_empty_list(y0, y1):
    assert _product_names("GLASS08B31", [], y0, y1) == []
    for name in NAMES[:300] + ODD:
        for short in SHORTS:
            assert _product_names(short, [name], y0, y1) == reference_names(short, [name], y0, y1), repr(name)


# ----------------------------------------------------------------------------------------------------------
# a tree: both products, year folders, a flat folder
# ----------------------------------------------------------------------------------------------------------
ALB = [  # albedo/<year>/: 8-day composites (day of year 1, 9, 17, ...)
    "albedo/1999/GLASS02B05.V04.A1999353.2019001.hdf", "albedo/1999/GLASS02B05.V04.A1999361.2019001.hdf",
    "albedo/2000/GLASS02B05.V04.A2000001.2019001.hdf", "albedo/2000/GLASS02B05.V04.A2000009.2019001.hdf",
    "albedo/2000/GLASS02B05.V03.A2000017.2019001.hdf", "albedo/2000/GLASS02B05.V04.A2000017.2018001.hdf",
    "albedo/2000/GLASS02B05.V04.A2000033.2019001.hdf",
    "albedo/2000/GLASS02B05.V04.A2000012.2019001.hdf",  # off the 8-day schedule
    "albedo/2000/GLASS02B05.V04.A2000400.2019001.hdf",  # no such day
]
LST = [  # lst/ flat, daily
    "lst/GLASS08B31.V40.A1999364.2021250.hdf", "lst/GLASS08B31.V40.A1999365.2021250.hdf",
    "lst/GLASS08B31.V40.A2000001.2021250.hdf", "lst/GLASS08B31.V40.A2000002.2021250.hdf",
    "lst/GLASS08B31.V41.A2000002.2021250.hdf", "lst/glass08b31.v40.a2000003.2021250.HDF",
    "lst/GLASS08B31.V40.A2000005.2021250.hdf", "lst/GLASS08B31.V40.A2000005.2022001.hdf",
    "GLASS08B31.V40.A2000006.2021250.hdf",  # at the root
    "lst/notes.txt", "lst/GLASS08B31.V40.A2000007.2021250.hdf.md5",
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("avhrr")
    for rel in ALB + LST:  # empty files: only the names matter
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).touch()
    (root / "lst" / "empty").mkdir()
    return root


def _both(root, product, start, end, **kw):
    """find_glass_files(root, ...) without and with listing=list_tree(root)."""
    return (find_glass_files(root, product, start, end, allow_gaps=True, **kw),
            find_glass_files(root, product, start, end, allow_gaps=True, listing=list_tree(root), **kw))


@pytest.mark.parametrize("start,end", [("1999-12-01", "2000-02-15"), ("2000-01-01", "2000-01-31"),
                                       ("1999-12-30", "2000-01-07")])
def test_lst_with_listing_equals_without(tree, start, end):
    plain, listed = _both(tree, "lst", start, end)
    pd.testing.assert_series_equal(plain, listed)
    assert listed.name == "GLASS08B31" and listed.index.name == "time"
    day = lambda s: pd.Timestamp(s)  # noqa: E731
    if day(start) <= day("2000-01-02") <= day(end):  # highest version wins, then the latest production date
        assert listed[day("2000-01-02")] == str(tree / "lst/GLASS08B31.V41.A2000002.2021250.hdf")
    if day(start) <= day("2000-01-06") <= day(end):
        assert listed[day("2000-01-05")] == str(tree / "lst/GLASS08B31.V40.A2000005.2022001.hdf")
        assert listed[day("2000-01-06")] == str(tree / "GLASS08B31.V40.A2000006.2021250.hdf")  # the root too
        assert listed[day("2000-01-03")].endswith("glass08b31.v40.a2000003.2021250.HDF")
        assert listed[day("2000-01-04")] is None


def test_albedo_with_listing_equals_without_and_warns_the_same(tree):
    with pytest.warns(DataWarning, match=r"1 GLASS02B05 file\(s\) at dates off the 8-day schedule") as w1:
        plain = find_glass_files(tree, "albedo", "1999-12-01", "2000-02-29", allow_gaps=True)
    with pytest.warns(DataWarning, match=r"1 GLASS02B05 file\(s\) at dates off the 8-day schedule") as w2:
        listed = find_glass_files(tree, "albedo", "1999-12-01", "2000-02-29", allow_gaps=True,
                                  listing=list_tree(tree))
    pd.testing.assert_series_equal(plain, listed)
    assert [str(w.message) for w in w1 if w.category is DataWarning] == \
        [str(w.message) for w in w2 if w.category is DataWarning]
    assert listed[pd.Timestamp("2000-01-17")] == str(tree / "albedo/2000/GLASS02B05.V04.A2000017.2018001.hdf")
    assert listed[pd.Timestamp("1999-12-27")] == str(tree / "albedo/1999/GLASS02B05.V04.A1999361.2019001.hdf")
    assert listed[pd.Timestamp("2000-01-25")] is None and listed.notna().sum() == 6
    # one listing of the tree serves both products
    shared = list_tree(tree)
    with pytest.warns(DataWarning):
        again = find_glass_files(tree, "albedo", "1999-12-01", "2000-02-29", allow_gaps=True, listing=shared)
    pd.testing.assert_series_equal(again, plain)
    pd.testing.assert_series_equal(find_glass_files(tree, "lst", "2000-01-01", "2000-01-09", allow_gaps=True,
                                                    listing=shared),
                                   find_glass_files(tree, "lst", "2000-01-01", "2000-01-09", allow_gaps=True))


@pytest.mark.parametrize("product,short,n", [("lst", "GLASS08B31", 9), ("albedo", "GLASS02B05", 9)])
def test_no_file_in_the_period_counts_the_files_outside_it_the_same(tree, product, short, n):
    # every name of the product counts, whatever its year or day of year (A2000400 too), none of other products
    assert n == sum(1 for rel in ALB + LST if _NAME.match(rel.rsplit("/", 1)[-1])
                    and _NAME.match(rel.rsplit("/", 1)[-1]).group(1).upper() == short)
    msgs = []
    for listing in (None, list_tree(tree)):
        with pytest.raises(MissingFileError, match=rf"\(found {n} {short} file\(s\) outside the period\)") as e:
            find_glass_files(tree, product, "2005-01-01", "2005-03-31", allow_gaps=True, listing=listing)
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1]


def test_list_tree_sorts_folders_and_names(tmp_path):
    made = ["b/z.hdf", "b/A.hdf", "a/x/2.hdf", "a-b/1.hdf", "a/y.hdf", "a/B.hdf", "root.txt", "Z/q", "a/x/10.hdf"]
    for rel in made:  # created in this (unsorted) order
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).touch()
    (tmp_path / "c").mkdir()  # an empty folder is listed with no name
    r = str(tmp_path)
    want = ((r, ("root.txt",)), (f"{r}/Z", ("q",)), (f"{r}/a", ("B.hdf", "y.hdf")),
            (f"{r}/a-b", ("1.hdf",)), (f"{r}/a/x", ("10.hdf", "2.hdf")), (f"{r}/b", ("A.hdf", "z.hdf")),
            (f"{r}/c", ()))
    assert list_tree(tmp_path) == want  # folders as sorted strings ('-' before '/'), names sorted, no folder names
    assert list_tree(r) == want
    assert [f for f, _ in want] == sorted(f for f, _ in want)
