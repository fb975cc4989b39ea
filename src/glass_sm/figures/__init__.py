"""Figures: ``style`` (look, colours, units, saving), ``maps`` (cartopy, offline), ``paper`` (figures 1-12, drawn
from the data handed to them; ``framework`` draws figure 1) and ``captions`` (caption text from given numbers).

Stage 06 (:mod:`glass_sm.stages.s06_figures`) reads the stages' files, computes the numbers and saves the figures.
"""
