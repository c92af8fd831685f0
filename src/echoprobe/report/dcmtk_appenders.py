"""log4cplus appenders as DCMTK uses them: console, null, file and rolling file.

Rules of this module (DCMTK 3.6.8, oflog/libsrc/{appender,consap,fileap}.cc):

* An appender writes what its layout formats when the event reaches its threshold.
* A file that cannot be opened is reported as a ``loglog`` line and the appender writes
  nothing; failed renames while rolling over are skipped, as log4cplus only reports them.
  The rename loop is bounded (`MAX_ROLLING_BACKUPS`), DCMTK's is not.
* Builds on `dcmtk_levels` and `dcmtk_layout`.
"""

from __future__ import annotations

import os
import sys

from echoprobe.report.dcmtk_levels import FS_ENCODING, write_text

# typing.TYPE_CHECKING without importing typing (start-up time); mypy honours the name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO, TextIO

    from echoprobe.report.dcmtk_layout import Event, Layout

__all__ = [
    "APPENDER_KEYS",
    "COMMON_KEYS",
    "KNOWN_APPENDERS",
    "LAYOUT_KEYS",
    "MIN_ROLLING_SIZE",
    "UNSUPPORTED_APPENDERS",
    "Appender",
    "ConsoleAppender",
    "FileAppender",
    "NullAppender",
    "RollingFileAppender",
]


# The appender factories DCMTK registers, and the settings each one reads.
KNOWN_APPENDERS = {
    "log4cplus::ConsoleAppender",
    "log4cplus::NullAppender",
    "log4cplus::FileAppender",
    "log4cplus::RollingFileAppender",
}
# Registered by DCMTK but not implemented here: reported, then skipped.
UNSUPPORTED_APPENDERS = {
    "log4cplus::DailyRollingFileAppender",
    "log4cplus::SocketAppender",
    "log4cplus::SysLogAppender",
    "log4cplus::AsyncAppender",
    "log4cplus::Log4jUdpAppender",
    "log4cplus::NTEventLogAppender",
    "log4cplus::Win32ConsoleAppender",
    "log4cplus::Win32DebugAppender",
}
COMMON_KEYS = {"layout", "Threshold", "ImmediateFlush"}
LAYOUT_KEYS = {"layout.ConversionPattern", "layout.Pattern", "layout.FormatEachLine"}
APPENDER_KEYS = {
    "log4cplus::ConsoleAppender": {"logToStdErr"},
    "log4cplus::NullAppender": set(),
    "log4cplus::FileAppender": {"File", "Append"},
    "log4cplus::RollingFileAppender": {"File", "Append", "MaxFileSize", "MaxBackupIndex"},
}


class Appender:
    __slots__ = ("layout", "name", "threshold")

    def __init__(self, name: str, layout: Layout, threshold: int) -> None:
        self.name = name
        self.layout = layout
        self.threshold = threshold

    def append(self, event: Event) -> None:
        if event.level >= self.threshold:
            self.write(self.layout.format(event))

    def write(self, text: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        return None


class ConsoleAppender(Appender):
    __slots__ = ("stream", "to_stderr")

    def __init__(
        self,
        name: str,
        layout: Layout,
        threshold: int,
        to_stderr: bool,
        stream: TextIO | None,
    ) -> None:
        super().__init__(name, layout, threshold)
        self.to_stderr = to_stderr
        self.stream = stream  # None: whatever sys.stderr/sys.stdout is at write time

    def write(self, text: str) -> None:
        stream = self.stream
        if stream is None:
            stream = sys.stderr if self.to_stderr else sys.stdout
        write_text(stream, text)


class NullAppender(Appender):
    __slots__ = ()

    def write(self, text: str) -> None:
        return None


class FileAppender(Appender):
    __slots__ = ("flush", "handle", "path")

    def __init__(
        self,
        name: str,
        layout: Layout,
        threshold: int,
        *,
        path: str,
        append: bool,
        flush: bool,
        loglog: list[tuple[str, str]],
    ) -> None:
        super().__init__(name, layout, threshold)
        self.path = path
        self.flush = flush
        self.handle = self._open(append, loglog)

    def _open(self, append: bool, loglog: list[tuple[str, str]]) -> BinaryIO | None:
        try:
            return open(self.path, "ab" if append else "wb")
        except OSError:
            loglog.append(("ERROR", f"Unable to open file: {self.path}"))
            return None

    def write(self, text: str) -> None:
        handle = self.handle
        if handle is None:
            return
        try:
            data = text.encode(FS_ENCODING, "surrogateescape")
        except UnicodeEncodeError:
            data = text.encode(FS_ENCODING, "backslashreplace")
        handle.write(data)
        if self.flush:
            handle.flush()
        self.after_write()

    def after_write(self) -> None:
        return None

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def _ignore_os_error(action: Callable[..., object], *args: str) -> None:
    try:
        action(*args)
    except OSError:
        return


MIN_ROLLING_SIZE = 200 * 1024
_MAX_ROLLING_BACKUPS = 10000  # bounds the rename loop; DCMTK has no bound


class RollingFileAppender(FileAppender):
    __slots__ = ("max_backups", "max_size")

    def __init__(
        self,
        name: str,
        layout: Layout,
        threshold: int,
        *,
        path: str,
        append: bool,
        flush: bool,
        max_size: int,
        max_backups: int,
        loglog: list[tuple[str, str]],
    ) -> None:
        super().__init__(
            name, layout, threshold, path=path, append=append, flush=flush, loglog=loglog
        )
        self.max_size = max_size
        self.max_backups = min(max(max_backups, 1), _MAX_ROLLING_BACKUPS)

    def after_write(self) -> None:
        handle = self.handle
        if handle is None or handle.tell() <= self.max_size:
            return
        handle.close()
        self.handle = None
        # Failed renames are skipped, as log4cplus only reports them.
        _ignore_os_error(os.remove, f"{self.path}.{self.max_backups}")
        for index in range(self.max_backups - 1, 0, -1):
            _ignore_os_error(os.replace, f"{self.path}.{index}", f"{self.path}.{index + 1}")
        _ignore_os_error(os.replace, self.path, f"{self.path}.1")
        self.handle = self._open(False, [])
