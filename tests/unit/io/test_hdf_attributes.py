"""glass_hdf.hdf_attributes: the fast attribute reader returns exactly what pyhdf's ``attributes()`` returns."""

import numpy as np
from pyhdf.SD import SD, SDC

from glass_sm.io.glass_hdf import hdf_attributes


def _write(path):
    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    long_text = "GROUP=GridStructure\n\tGROUP=GRID_1\n" + "x" * 5000 + "\nEND\n"
    for name, kind, value in (("StructMetadata.0", SDC.CHAR8, long_text),
                              ("Satellite", SDC.CHAR8, "NOAA-14"),
                              ("one_char", SDC.CHAR8, "A"),
                              ("latin1", SDC.CHAR8, "caf\xe9 \xb0C"),
                              ("float_attr", SDC.FLOAT64, 0.0001),
                              ("int_list", SDC.INT16, [-9999, 0, 10000])):
        attr = sd.attr(name)
        attr.set(kind, value)
    sds = sd.create("LST", SDC.UINT16, (4, 5))
    sds[:] = np.arange(20, dtype=np.uint16).reshape(4, 5)
    for name, kind, value in (("units", SDC.CHAR8, "K"), ("scale_factor", SDC.FLOAT32, 0.01),
                              ("long_name", SDC.CHAR8, "land surface temperature"),
                              ("valid_range", SDC.UINT16, [1, 65534]), ("_FillValue", SDC.UINT16, 0)):
        sds.attr(name).set(kind, value)
    sds.endaccess()
    sd.end()


def test_fast_attributes_equal_pyhdf(tmp_path):
    path = tmp_path / "attrs.hdf"
    _write(path)
    sd = SD(str(path), SDC.READ)
    try:
        ref, fast = sd.attributes(), hdf_attributes(sd)
        assert fast == ref
        assert fast["StructMetadata.0"].endswith("END\n") and len(fast["StructMetadata.0"]) > 5000
        assert fast["latin1"] == "caf\xe9 \xb0C" and fast["one_char"] == "A"
        sds = sd.select("LST")
        assert hdf_attributes(sds) == sds.attributes()
        assert hdf_attributes(sds)["valid_range"] == [1, 65534]
        sds.endaccess()
    finally:
        sd.end()


def test_fast_attributes_fall_back_on_failure(monkeypatch, tmp_path):
    path = tmp_path / "attrs.hdf"
    _write(path)
    import glass_sm.io.glass_hdf as gh

    def broken(*args):
        raise TypeError("no pointer")

    monkeypatch.setattr(gh.ctypes, "string_at", broken)  # the fast path fails: pyhdf's own reader answers
    sd = SD(str(path), SDC.READ)
    try:
        assert gh.hdf_attributes(sd) == sd.attributes()
    finally:
        sd.end()
