"""Figures: the generic ones of a run (plots.run) and of a sweep (plots.sweep), and the style
they share (plots.style). Which figures a run or sweep gets is decided above, in
:mod:`dlx.figures`, which also asks the experiments for their own; plots/ imports no experiment."""
