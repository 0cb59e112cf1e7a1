"""Tests of the integration patterns of a host application (see conftest)."""

import pytest

# The shared case and helper modules assert too: let pytest explain failures.
pytest.register_assert_rewrite(f'{__name__}.cases', f'{__name__}.support')
