from tests.replay.fixtures import numbered_session  # noqa: F401 -- the fixture
