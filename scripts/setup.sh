#!/usr/bin/env bash
# Install what callrouter needs on Debian 12 with Python 3.11: the Debian tools it drives
# (sipp, mosquitto, promtool, amtool, kamailio, espeak-ng, sox, systemd-analyze) and a virtualenv in
# .venv with the package and its test tools. Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v sipp >/dev/null || need_apt+=(sip-tester)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v amtool >/dev/null || need_apt+=(prometheus-alertmanager)  # amtool checks the example
command -v espeak-ng >/dev/null || need_apt+=(espeak-ng)
command -v sox >/dev/null || need_apt+=(sox)
command -v kamailio >/dev/null || [ -x /usr/sbin/kamailio ] || need_apt+=(kamailio)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${need_apt[@]}" >/dev/null
fi

# Debian's kamailio package may run its own Kamailio on 5060, the port callrouter's edge takes
# (config.yaml edge.listen_port): stop it and keep it from starting at boot. Our edge is started
# by `callrouter run` (or systemd/callrouter-edge.service). Harmless when absent or stopped.
if [ -e /etc/init.d/kamailio ] || [ -e /lib/systemd/system/kamailio.service ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    if systemctl is-enabled --quiet kamailio 2>/dev/null || systemctl is-active --quiet kamailio; then
      echo "setup: stopping and disabling Debian's kamailio service (the edge takes its port)"
      $SUDO systemctl disable --now kamailio >/dev/null 2>&1 || echo "setup: could not stop it"
    fi
  else  # no systemd as PID 1 (containers): the SysV script and its rc links
    if [ -e /etc/init.d/kamailio ]; then
      $SUDO /etc/init.d/kamailio stop >/dev/null 2>&1 || true
    fi
    if ls /etc/rc[2-5].d/S*kamailio >/dev/null 2>&1 && command -v update-rc.d >/dev/null; then
      echo "setup: disabling Debian's kamailio service at boot (the edge takes its port)"
      $SUDO update-rc.d kamailio disable >/dev/null 2>&1 || echo "setup: could not disable it"
    fi
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi

# The key that seals recordings and NHS numbers (security.key_file in config.yaml): made once,
# never replaced. Back it up apart from the database and recordings.
.venv/bin/callrouter keygen --config config.yaml --if-missing
