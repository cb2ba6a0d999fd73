"""Fixtures of the training tests: the real faceres backbone, and an environment in which no fetch can succeed."""

import pytest

from emolens.errors import EmolensError

# Every fetch through a closed local port, none exempted.
UNREACHABLE = {"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
               "http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}


@pytest.fixture(scope="module")
def faceres():
    """The package's faceres.json and faceres.bin in the user's cache (fetched once, checked)."""
    from emolens.training.backbones import faceres_files  # the train extra: only where a test asks for it

    try:
        return faceres_files()
    except EmolensError as error:
        if "cannot fetch" in str(error):
            pytest.skip(f"the npm registry cannot be reached: {error}")
        raise
