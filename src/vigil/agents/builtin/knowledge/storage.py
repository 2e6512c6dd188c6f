"""Storage: full disks, missing files, permissions."""

from __future__ import annotations

from vigil.agents.builtin.knowledge.pattern import FailurePattern

PATTERNS: tuple[FailurePattern, ...] = (
    FailurePattern(
        error_type="DiskFull",
        title="disk full",
        phrases=(
            "Disk is full",
            "out of disk space",
            "insufficient disk space",
            "disk watermark",
            "No space left on device",
            "ENOSPC",
            "disk full",
            "disk is full",
            "filesystem is full",
            "file system full",
            "not enough space on the disk",
            "FreeDiskSpaceFailed",
            "DiskPressure",
            "low on resource: ephemeral-storage",
            "flood stage disk watermark",
            "flood-stage disk watermark",
            "Disk quota exceeded",
            "could not extend file",
        ),
        signals=(r"Errno 28\b",),
        severity="critical",
        root_cause="A volume or node disk has no free space left (logs, temporary files, database "
        "growth or an unbounded local cache), so writes fail.",
        remediation=(
            "Find the full filesystem and what grew (`df -h`, `du -xh --max-depth=1`; on Kubernetes "
            "the PVC usage or node ephemeral storage).",
            "Free space safely: rotate or ship logs, clear temporary files, drop old data.",
            "Expand the volume (PVC resize) or add storage if the growth is legitimate.",
            "Add a disk usage alert (for example at 80%) and retention limits for whatever filled it.",
        ),
        notify=True,
        confidence=0.95,
        specificity=0.95,
    ),
    FailurePattern(
        error_type="FileNotFound",
        title="files not found",
        phrases=(
            "No such file or directory",
            "FileNotFoundError",
            "FileNotFoundException",
            "cannot find the file specified",
            "cannot find the path specified",
        ),
        signals=(r"\bENOENT\b",),
        severity="warning",
        root_cause="The service reads a file or directory that does not exist: a missing volume "
        "mount, a wrong path in configuration, or a file the image no longer contains.",
        remediation=(
            "Take the path from the samples and check the pod's volume mounts and the image contents.",
            "Check configuration that builds the path (environment, ConfigMaps) against the last "
            "working release.",
        ),
        notify=False,
        confidence=0.75,
        specificity=0.6,
    ),
    FailurePattern(
        error_type="FilePermissionDenied",
        title="file permission denied",
        phrases=(
            "permission denied",
            "Read-only file system",
            "java.nio.file.AccessDeniedException",
            "AccessDeniedException: /",
        ),
        signals=(
            r"\bEACCES\b",
            r"\bEPERM\b",
            r"\bEROFS\b",
            r"Errno 13\b",
        ),
        severity="warning",
        root_cause="The process lacks permission on a file, directory or socket: it runs as a "
        "different user than expected, the volume's ownership is wrong, or the filesystem is "
        "read-only.",
        remediation=(
            "Take the path from the samples and compare its owner and mode with the process's "
            "user (`id`, `ls -ld`).",
            "Set the pod's securityContext (runAsUser, fsGroup) or the volume's permissions to match.",
            "Write to a writable volume (emptyDir) if the root filesystem is read-only on purpose.",
        ),
        notify=False,
        confidence=0.75,
        specificity=0.6,
    ),
)
