"""The store-side services every entry point shares, built from the configuration.

``serve``, ``demo`` and the command line all need the same complaints service,
dialer API and recordings catalogue, wired to each other the same way; this is
their one place.  Nothing here opens a socket: :mod:`callcenter.app` adds the
running parts (AMI, FastAGI, web, timers) around a :class:`Domain`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dialer.api import DialerApi
from dialer.campaigns import Settings as DialerSettings
from recordings.catalog import Catalog
from recordings.settings import Settings as RecordingSettings
from recordings.settings import from_config as recording_settings

from .complaints.deadlines import PolicyError
from .complaints.service import Complaints
from .config import Config, ConfigError
from .queuecalls.ratings import CallRatings


@dataclass(frozen=True)
class Domain:
    recording_settings: RecordingSettings
    catalog: Catalog
    complaints: Complaints
    dialer: DialerApi
    dialer_settings: DialerSettings
    ratings: CallRatings


def build_domain(config: Config, *, clock: Any = None) -> Domain:
    """``clock``: the service's clock (the wall clock for the command line)."""
    if clock is None:
        from .clock import WallClock

        clock = WallClock()
    rec = recording_settings(config)
    catalog = Catalog(rec)
    dsettings = DialerSettings.from_config(config)
    dialer = DialerApi(dsettings, region=config.hospital.region, clock=clock)
    try:
        complaints = Complaints.from_config(config, followups=dialer, recordings=catalog)
    except PolicyError as exc:
        raise ConfigError(str(exc)) from None
    dialer.connect(complaints)
    ratings = CallRatings(complaints=complaints, flag_queues=config.values["complaints"]["rating_flag_queues"])
    return Domain(recording_settings=rec, catalog=catalog, complaints=complaints, dialer=dialer,
                  dialer_settings=dsettings, ratings=ratings)
