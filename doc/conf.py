"""Sphinx configuration (a skeleton; the site is built out later)."""

import skrelatif

project = "skrelatif"
author = "The skrelatif developers"
release = skrelatif.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.mathjax"]
exclude_patterns = ["_build"]
