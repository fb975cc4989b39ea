"""glass_sm.figures.style: labels, units and panel letters shared by every figure."""

import matplotlib.pyplot as plt

from glass_sm.figures import style


def test_labels_and_units():
    assert style.data_label(True) == style.TWIN_LABEL and "synthetic twin" in style.TWIN_LABEL
    assert style.data_label(False) == "real data"
    assert style.fmt_lat(40.0) == "40.00° N" and style.fmt_lat(-3.5) == "3.50° S"
    assert style.fmt_lon(-99.6) == "99.60° W" and style.fmt_lon(10) == "10.00° E"
    assert style.sm_units("m3 m-3") == style.SM_UNITS and style.sm_units("K") == "K"
    assert style.unit_label("1") == "(1)" and style.unit_label(None) == "(1)"
    assert style.unit_label("m") == "(m)" and style.unit_label("m3 m-3") == f"({style.SM_UNITS})"
    assert style.title_suffix("") == "" and style.title_suffix("real data") == " — real data"


def test_panel_letters():
    fig, (a, b) = plt.subplots(1, 2)
    a.set_title("maps")
    style.panel_letter(a, 0)
    style.panel_letter(b, 1)
    assert a.get_title() == "(a) maps"
    assert b.get_title(loc="left") == "(b)"
    plt.close(fig)
