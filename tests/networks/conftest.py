"""The files here are users' networks that tests load by path (tests/test_loading.py), some
broken on purpose (one fails to import): none is collected for doctests."""

collect_ignore_glob = ["*.py"]
