"""Exception and warning classes of sodinn: the only custom types users need to catch or filter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["SodinnWarning", "GeometryWarning", "PSFWarning", "RotationWarning", "SettingError", "python_setting", "toml_setting"]


class SodinnWarning(UserWarning):
    """Base class of the warnings sodinn emits for recoverable oddities."""


class GeometryWarning(SodinnWarning):
    """A geometric request was adjusted (e.g. an annulus clipped to the frame)."""


class PSFWarning(SodinnWarning):
    """The off-axis PSF was changed on input: recentred on its stamp, or averaged from a cube of stamps."""


class RotationWarning(SodinnWarning):
    """The field rotates too little for ADI: a source at the inner radius of the analysis moves less than one FWHM.

    Often angles given in radians, or a sequence too short.
    """


def python_setting(name: str, value: Any = None) -> str:
    """Name a setting as a Python caller writes it: ``name=value`` (or ``name`` alone without a value).

    Parameters
    ----------
    name : str
        The parameter or configuration field.
    value : object, optional
        A value that fixes the problem (``None``: name the setting alone).

    Returns
    -------
    str
        E.g. ``"nan_policy='zero'"``.
    """
    return name if value is None else f"{name}={value!r}"


def toml_setting(name: str, value: Any = None) -> str:
    """Name a setting as a configuration file writes it: ``name = value`` in TOML (``name`` alone without a value).

    Parameters
    ----------
    name : str
        The configuration key.
    value : object, optional
        A value that fixes the problem (``None``: name the key alone).

    Returns
    -------
    str
        E.g. ``'nan_policy = "zero"'``.
    """
    import json

    if value is None:
        return name
    shown = str(value).lower() if isinstance(value, bool) else json.dumps(value)
    return f"{name} = {shown}"


class SettingError(ValueError):
    """A wrong value whose fix is a setting the caller can change.

    The message is a template whose ``{name}`` fields name settings; ``str(err)`` writes them as a
    Python caller does (``nan_policy='zero'``), and :meth:`render` as another interface does (the
    command line writes ``--nan-policy zero``). So every message names a setting that exists for
    whoever reads it.

    Parameters
    ----------
    template : str
        The message, with a ``{name}`` field for each setting in ``settings``.
    **settings : object
        Setting name (a parameter or configuration field) -> value that fixes the problem (``None``
        when no single value does; the message then names the setting alone).

    Examples
    --------
    >>> err = SettingError("the cube holds NaN; {nan_policy} replaces them", nan_policy="zero")
    >>> str(err)
    "the cube holds NaN; nan_policy='zero' replaces them"
    >>> err.render(lambda name, value: f"--{name.replace('_', '-')} {value}")
    'the cube holds NaN; --nan-policy zero replaces them'
    """

    def __init__(self, template: str, **settings: Any) -> None:
        self.template = template
        self.settings = dict(settings)
        super().__init__(self.render(python_setting))

    def render(self, form: Callable[[str, Any], str]) -> str:
        """Return the message with each setting written by ``form(name, value)``.

        Parameters
        ----------
        form : callable
            ``form(name, value) -> str`` for each setting of the message.

        Returns
        -------
        str
            The message.
        """
        return self.template.format(**{name: form(name, value) for name, value in self.settings.items()})

    def prefixed(self, prefix: str) -> SettingError:
        """Return the same error with ``prefix`` (e.g. where in a file the setting was read) before the message.

        Parameters
        ----------
        prefix : str
            Text put before the message, followed by ``": "``.

        Returns
        -------
        SettingError
            A new error naming the same settings.
        """
        escaped = prefix.replace("{", "{{").replace("}", "}}")
        return SettingError(f"{escaped}: {self.template}", **self.settings)

    def renamed(self, **names: str) -> SettingError:
        """Return the same error with settings renamed, as a caller that sets them under other names sees it.

        Parameters
        ----------
        **names : str
            Old setting name -> new name (e.g. ``ncomp="oracle_ncomp"`` where a configuration passes
            its ``oracle_ncomp`` as a function's ``ncomp``).

        Returns
        -------
        SettingError
            A new error; the template's fields are renamed too.
        """
        template = self.template
        for old, new in names.items():
            template = template.replace("{" + old + "}", "{" + new + "}")
        settings = {names.get(name, name): value for name, value in self.settings.items()}
        return SettingError(template, **settings)
