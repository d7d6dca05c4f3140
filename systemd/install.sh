#!/usr/bin/env bash
# Install Posko on Raspberry Pi OS Bookworm (64-bit): run once as root from a checkout,
#   sudo systemd/install.sh [--post-id ID] [--district-key FILE] [--i2c] [--1wire] [--camera]
#                           [--kiosk] [--district [--receivers N]]
# It is safe to run again (after a `git pull`, say): an existing configuration, admin PIN and
# data are kept; the code, the venv and the units are brought up to date.
#
# For tests every path and command can be redirected: POSKO_ROOT prefixes every absolute
# path written (/etc, /var/lib, /opt, /boot/firmware, /usr/local/bin); SYSTEMCTL, APT_GET,
# USERADD, USERMOD, GROUPADD, GETENT, CHOWN, RASPI_CONFIG and POSKO_RUNAS (how to run a
# command as the posko user) replace the real commands; POSKO_PYTHON makes the venv;
# POSKO_PIP_ARGS are added to `pip install`; POSKO_VENV_LINK=DIR links an existing venv
# instead of making one. Paths inside the installed files (units, config) are the real ones.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: sudo systemd/install.sh [options]

Installs the Posko station as the systemd service posko.service: a system user `posko`,
/etc/posko/config.toml, the data directory /var/lib/posko, the code and a venv in /opt/posko.

  --post-id ID    the post id, unique in the district (a-z, 0-9, -; e.g. rw03-sukamaju);
                  asked for when missing; needed only when /etc/posko/config.toml is new
  --pin-stdin     read the admin PIN (6-12 digits) from one line of standard input
                  (or set POSKO_INSTALL_PIN); asked for when missing and none is set yet
  --district-key FILE
                  the district's public key (district.pub from `posko district keygen`),
                  installed into /etc/posko and listed in mqtt.district_keys; give it
                  twice while the district rotates its key (or set
                  POSKO_INSTALL_DISTRICT_KEYS to the files, space-separated); asked for
                  when none is installed yet; without one, sync stays off
  --i2c           enable I2C (MLX90614 thermometer; a new config then uses it)
  --1wire         enable 1-wire on BCM 4 (DS18B20 thermometer, used by a new config
                  when --i2c is not given; needs a reboot)
  --camera        install picamera2 from apt (a new config then takes photos)
  --kiosk         show the guard's page full-screen on the Pi's desktop after boot
  --district      also install the district receiver and a local Mosquitto broker, with
                  its ack signing key in /etc/posko-district (made once; this station
                  then pins its district.pub unless --district-key is given)
  --receivers N   with --district: run N receivers (2-9) as posko-district@1..N, one
                  $share group on one database, instead of posko-district.service
                  (docs/district.md); instance 1 serves the district page
  --unattended    never prompt; fail when something needed is missing
  -h, --help      this help
EOF
}

die() {
    echo "install.sh: $*" >&2
    exit 2
}
say() { echo "install.sh: $*"; }

ROOT=${POSKO_ROOT:-}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
APT_GET=${APT_GET:-apt-get}
USERADD=${USERADD:-useradd}
USERMOD=${USERMOD:-usermod}
GROUPADD=${GROUPADD:-groupadd}
GETENT=${GETENT:-getent}
CHOWN=${CHOWN:-chown}
RASPI_CONFIG=${RASPI_CONFIG:-raspi-config}
PYTHON=${POSKO_PYTHON:-python3}
read -r -a RUNAS <<<"${POSKO_RUNAS-runuser -u posko --}"
read -r -a PIP_ARGS <<<"${POSKO_PIP_ARGS:-}"

USER_NAME=posko
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
ETC=$ROOT/etc/posko
DISTRICT_ETC=$ROOT/etc/posko-district
CONFIG=$ETC/config.toml
DATA=$ROOT/var/lib/posko
OPT=$ROOT/opt/posko
SRC=$OPT/src
VENV=$OPT/venv
UNITS=$ROOT/etc/systemd/system
AUTOSTART=$ROOT/etc/xdg/autostart
BOOT_CONFIG=$ROOT/boot/firmware/config.txt
BIN_LINK=$ROOT/usr/local/bin/posko
POST_ID_PATTERN='^[a-z0-9][a-z0-9-]{0,31}$'
PIN_PATTERN='^[0-9]{6,12}$'

post_id="" pin_stdin=0 i2c=0 onewire=0 camera=0 kiosk=0 district=0 unattended=0 receivers=1
district_keys=()
while (($#)); do
    case $1 in
        --post-id) (($# > 1)) || die "--post-id needs a value"; post_id=$2; shift ;;
        --post-id=*) post_id=${1#*=} ;;
        --pin-stdin) pin_stdin=1 ;;
        --district-key) (($# > 1)) || die "--district-key needs a file"; district_keys+=("$2"); shift ;;
        --district-key=*) district_keys+=("${1#*=}") ;;
        --i2c) i2c=1 ;;
        --1wire) onewire=1 ;;
        --camera) camera=1 ;;
        --kiosk) kiosk=1 ;;
        --district) district=1 ;;
        --receivers) (($# > 1)) || die "--receivers needs a number"; receivers=$2; shift ;;
        --receivers=*) receivers=${1#*=} ;;
        --unattended) unattended=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
done
[[ $receivers =~ ^[1-9]$ ]] || die "--receivers must be a number from 1 to 9"
((district || receivers == 1)) || die "--receivers needs --district"
# Prompts need a terminal; --pin-stdin uses standard input for the PIN.
if ((pin_stdin)) || [[ ! -t 0 ]]; then unattended=1; fi

if [[ -z $ROOT && $(id -u) -ne 0 ]]; then
    die "run as root: sudo $0 $*"
fi

# posko itself, without the installer's POSKO_* variables (unknown ones are config errors).
posko() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$VENV/bin/posko" "$@"
}

ask_post_id() {
    if [[ -e $CONFIG ]]; then
        [[ -z $post_id ]] || say "keeping the existing $CONFIG (post id $post_id not applied)"
        return
    fi
    local rule="1-32 of a-z, 0-9 and -, starting with a letter or digit"
    if [[ -z $post_id ]]; then
        ((!unattended)) || die "no post id: give --post-id ID ($rule, e.g. rw03-sukamaju)"
        while true; do
            read -r -p "Post id, unique in the district (e.g. rw03-sukamaju): " post_id ||
                die "no post id given"
            [[ $post_id =~ $POST_ID_PATTERN ]] && break
            echo "Not a valid post id: $rule."
        done
    fi
    [[ $post_id =~ $POST_ID_PATTERN ]] || die "post id '$post_id' is not valid: $rule"
}

ask_pin() {
    pin=""
    if ((pin_stdin)); then
        IFS= read -r pin || [[ -n $pin ]] || die "--pin-stdin: no PIN on standard input"
    elif [[ -n ${POSKO_INSTALL_PIN:-} ]]; then
        pin=$POSKO_INSTALL_PIN
    elif [[ -e $DATA/admin_pin.json ]]; then
        return  # keep the PIN the post already has
    elif ((unattended)); then
        say "warning: no admin PIN given; the page's settings stay locked until" \
            "\`sudo -u posko posko set-pin\` is run"
        return
    else
        local again
        while true; do
            read -r -s -p "Admin PIN for the guard's page (6-12 digits): " pin && echo
            read -r -s -p "The same PIN again: " again && echo
            [[ $pin == "$again" ]] || { echo "The two PINs differ; again."; continue; }
            [[ $pin =~ $PIN_PATTERN ]] && break
            echo "The PIN must be 6 to 12 digits; again."
        done
    fi
    [[ $pin =~ $PIN_PATTERN ]] || die "the admin PIN must be 6 to 12 digits"
}

# The district's public key files: given, from the environment, or asked for.
ask_district_keys() {
    if ((${#district_keys[@]} == 0)) && [[ -n ${POSKO_INSTALL_DISTRICT_KEYS:-} ]]; then
        read -r -a district_keys <<<"$POSKO_INSTALL_DISTRICT_KEYS"
    fi
    if ((${#district_keys[@]} == 0)) && ((!district)) && ! compgen -G "$ETC/district-*.pub" >/dev/null
    then
        if ((unattended)); then
            say "warning: no district key given; sync stays off until one is installed" \
                "(install.sh --district-key district.pub)"
        else
            local file
            read -r -p "The district's public key file (district.pub), empty to skip: " file ||
                true
            [[ -z $file ]] || district_keys+=("$file")
        fi
    fi
    local key
    for key in "${district_keys[@]}"; do
        [[ -f $key && -r $key ]] || die "district key '$key' is not a readable file"
        grep -q -- "-----BEGIN PUBLIC KEY-----" "$key" ||
            die "district key '$key' is not a public key (district.pub, not district.key)"
    done
}

install_packages() {
    # python3-cryptography: the district's signed acks (the venv sees apt's build of it).
    local packages=(python3-venv python3-lgpio python3-cryptography)
    ((!camera)) || packages+=(python3-picamera2)
    ((!district)) || packages+=(mosquitto)
    ((!kiosk)) || packages+=(curl)
    say "installing ${packages[*]}"
    "$APT_GET" update -q
    DEBIAN_FRONTEND=noninteractive "$APT_GET" install -y -q --no-install-recommends "${packages[@]}"
}

enable_buses() {
    if ((i2c)); then
        say "enabling I2C"
        "$RASPI_CONFIG" nonint do_i2c 0  # 0 means enable
    fi
    if ((onewire)); then
        [[ -f $BOOT_CONFIG ]] || die "no $BOOT_CONFIG: is this Raspberry Pi OS Bookworm?"
        if grep -qE '^[[:space:]]*dtoverlay=w1-gpio([,[:space:]]|$)' "$BOOT_CONFIG"; then
            say "1-wire is already enabled in $BOOT_CONFIG"
        else
            # [all]: the line must not land inside a model filter such as [cm4].
            printf '\n[all]\n# Posko: DS18B20 thermometer on BCM 4\ndtoverlay=w1-gpio\n' \
                >>"$BOOT_CONFIG"
            say "1-wire enabled in $BOOT_CONFIG; reboot for it to take effect"
        fi
    fi
}

make_user() {
    if "$GETENT" passwd "$USER_NAME" >/dev/null; then
        say "user $USER_NAME exists"
    else
        "$USERADD" --system --user-group --home-dir /var/lib/posko --no-create-home \
            --shell /usr/sbin/nologin --comment "Posko station" "$USER_NAME"
    fi
    # Raspberry Pi OS has these groups; made if missing, since the unit cannot start
    # without its SupplementaryGroups= (udev gives the devices to them once they exist).
    local group
    for group in gpio i2c video audio; do
        "$GETENT" group "$group" >/dev/null || "$GROUPADD" --system "$group"
    done
    "$USERMOD" --append --groups gpio,i2c,video,audio "$USER_NAME"
}

make_dirs() {
    mkdir -p "$ETC" "$DATA" "$OPT"
    chmod 0750 "$ETC" "$DATA"
    "$CHOWN" "root:$USER_NAME" "$ETC"  # the config may hold the broker password
    "$CHOWN" "$USER_NAME:$USER_NAME" "$DATA"
}

# A fingerprint of the installed code, to know whether a running station must restart.
fingerprint() {
    [[ -d $1 ]] || { echo none; return; }
    (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum | sha256sum)
}

copy_code() {
    if [[ $REPO -ef $SRC ]]; then
        say "running from $SRC: the code is in place"
        return
    fi
    local staged=$SRC.new
    rm -rf "$staged"
    mkdir -p "$staged"
    tar -C "$REPO" --exclude=.git --exclude=.venv --exclude=venv --exclude=demo-data \
        --exclude=__pycache__ --exclude='*.egg-info' --exclude=.pytest_cache \
        --exclude=.mypy_cache --exclude=.ruff_cache --exclude=build --exclude=node_modules \
        -cf - . | tar -C "$staged" -xf -
    rm -rf "$SRC"
    mv "$staged" "$SRC"
}

make_venv() {
    if [[ -n ${POSKO_VENV_LINK:-} ]]; then  # tests: an existing venv that already has posko
        [[ -L $VENV || ! -e $VENV ]] || die "$VENV exists and is not a link"
        ln -sfn "$POSKO_VENV_LINK" "$VENV"
    else
        if [[ ! -x $VENV/bin/python ]]; then
            say "making the venv $VENV (it sees apt's lgpio and picamera2)"
            "$PYTHON" -m venv --system-site-packages "$VENV"
        fi
        local target=$SRC
        if ((district)); then target="$SRC[postgres]"; fi  # --db postgresql://... needs psycopg
        say "installing posko into $VENV"
        "$VENV/bin/python" -m pip install --quiet --upgrade "${PIP_ARGS[@]}" "$target"
    fi
    mkdir -p "$(dirname "$BIN_LINK")"
    ln -sfn /opt/posko/venv/bin/posko "$BIN_LINK"
}

write_config() {
    if [[ -e $CONFIG ]]; then
        say "keeping $CONFIG"
    else
        local staged=$CONFIG.new thermometer=simulated camera_driver=none
        ((!onewire)) || thermometer=ds18b20
        ((!i2c)) || thermometer=mlx90614
        ((!camera)) || camera_driver=picamera2
        # data.dir differs from the default only in a scratch root (POSKO_ROOT).
        posko settings --toml |
            sed -e "s|^id = \"posko-01\"\$|id = \"$post_id\"|" \
                -e "s|^dir = \"/var/lib/posko\"\$|dir = \"$DATA\"|" \
                -e "s|^driver = \"simulated\"\$|driver = \"$thermometer\"|" \
                -e "s|^driver = \"none\"\$|driver = \"$camera_driver\"|" >"$staged"
        grep -qx "id = \"$post_id\"" "$staged" || die "could not set the post id in $staged"
        chmod 0640 "$staged"
        "$CHOWN" "root:$USER_NAME" "$staged"
        mv "$staged" "$CONFIG"
        say "wrote $CONFIG for post $post_id (thermometer $thermometer, camera $camera_driver)"
        [[ $thermometer != simulated ]] || say "warning: no --i2c or --1wire, so the" \
            "thermometer is simulated: set thermometer.driver in $CONFIG for a real one"
    fi
    check_config
}

check_config() {
    env -i PATH=/usr/bin:/bin "$VENV/bin/python" - "$CONFIG" <<'EOF' ||
import sys
from edge.config import load
from sensors.errors import ConfigError
from sync.options import district_keys
try:
    config = load(sys.argv[1], env={})
    problems = []
    district_keys(config["mqtt.district_keys"], problems)
    if problems:
        raise ConfigError(problems)
except ConfigError as e:
    print(f"install.sh: {sys.argv[1]} has {len(e.problems)} problem(s):", file=sys.stderr)
    for problem in e.problems:
        print(f"  - {problem}", file=sys.stderr)
    sys.exit(1)
EOF
        die "fix $CONFIG, then run the installer again"
}

# The district's key pair, when this machine is also the district (made once, kept after).
make_district_key() {
    ((district)) || return 0
    if [[ -e $DISTRICT_ETC/district.key ]]; then
        say "keeping the district's signing key in $DISTRICT_ETC"
    else
        mkdir -p "$DISTRICT_ETC"
        chmod 0700 "$DISTRICT_ETC"
        posko district keygen "$DISTRICT_ETC"
    fi
    ((${#district_keys[@]})) || district_keys+=("$DISTRICT_ETC/district.pub")
}

# Install each district key as /etc/posko/district-<hash>.pub and list it in the config.
install_district_keys() {
    ((${#district_keys[@]})) || return 0
    local key target installed=()
    for key in "${district_keys[@]}"; do
        target=$ETC/district-$(sha256sum <"$key" | cut -c1-12).pub
        [[ -f $target ]] && cmp -s "$key" "$target" || install -m 0644 "$key" "$target"
        installed+=("$target")
    done
    env -i PATH=/usr/bin:/bin "$VENV/bin/python" - "$CONFIG" "${installed[@]}" <<'EOF' ||
import re
import sys
import tomllib
from pathlib import Path

config, new = Path(sys.argv[1]), sys.argv[2:]
text = config.read_text()
keys = tomllib.loads(text).get("mqtt", {}).get("district_keys", [])
keys += [k for k in new if k not in keys]
line = "district_keys = [" + ", ".join('"' + k + '"' for k in keys) + "]"
updated, n = re.subn(r"(?m)^district_keys = .*$", lambda m: line, text, count=1)
if n != 1:
    sys.exit(f"install.sh: no district_keys line in the [mqtt] section of {config}")
if updated != text:
    config.write_text(updated)
    print(f"install.sh: mqtt.district_keys lists {', '.join(keys)}")
EOF
        die "add the district key(s) to mqtt.district_keys in $CONFIG by hand"
    check_config
}

set_pin() {
    [[ -n $pin ]] || return 0
    # From /: the posko user may not enter the technician's checkout.
    (cd / && printf '%s\n' "$pin" | "${RUNAS[@]}" env -i PATH=/usr/bin:/bin LANG=C.UTF-8 \
        "$VENV/bin/posko" --config "$CONFIG" set-pin --stdin)
}

install_file() {  # install_file MODE SOURCE TARGET; prints "changed" when it did change
    local mode=$1 source=$2 target=$3
    if [[ -f $target ]] && cmp -s "$source" "$target"; then return; fi
    mkdir -p "$(dirname "$target")"
    install -m "$mode" "$source" "$target"
    echo changed
}

install_units() {
    local changed="" units=(posko.service) file i
    if ((district && receivers > 1)); then
        # The group replaces the single receiver (a receiver outside it would double the work).
        "$SYSTEMCTL" disable --now posko-district.service 2>/dev/null || true
        for ((i = 1; i <= receivers; i++)); do units+=("posko-district@$i.service"); done
    elif ((district)); then
        units+=(posko-district.service)
    fi
    for unit in "${units[@]}"; do
        file=${unit/@[0-9]*./@.}  # an instance's file is its template's
        changed+=$(install_file 0644 "$REPO/systemd/$file" "$UNITS/$file")
    done
    if ((kiosk)); then
        install_file 0644 "$REPO/systemd/posko-kiosk.desktop" \
            "$AUTOSTART/posko-kiosk.desktop" >/dev/null
        "$RASPI_CONFIG" nonint do_boot_behaviour B4  # desktop, logged in automatically
        "$RASPI_CONFIG" nonint do_blanking 1  # 1 means: never blank the guard's screen
    fi
    "$SYSTEMCTL" daemon-reload
    # An update (not a first install) that changed the code or a unit restarts the station.
    if [[ $code_before != none ]] && [[ -n $changed || $code_before != "$(fingerprint "$SRC")" ]]
    then
        "$SYSTEMCTL" try-restart "${units[@]}"  # a running station picks up the new code
    fi
    "$SYSTEMCTL" enable --now "${units[@]}"
}

main() {
    ask_post_id
    ask_pin
    ask_district_keys
    install_packages
    enable_buses
    make_user
    make_dirs
    code_before=$(fingerprint "$SRC")
    copy_code
    make_venv
    write_config
    make_district_key
    install_district_keys
    set_pin
    install_units
    say "done. Check it with: systemctl status posko; journalctl -u posko -f;" \
        "sudo -u posko posko status"
    ((!onewire)) || say "reboot once for 1-wire: sudo reboot"
}

main
