"""Figures: style, offline maps, the paper's figures (drawn only from stage files) and their captions."""
