#!/bin/sh
# Postfix + Dovecot from Debian as private instances, for bench/incumbents.py.
#
#   incumbents_setup.sh start DIR MX_PORT SUBMISSION_PORT POP3_PORT POP3S_PORT RELAY_PORT PASSWORD USER...
#   incumbents_setup.sh stop DIR
#
# Installs the packages when they are missing (debconf preseeded to "No configuration", so
# nothing asks), then writes every piece of configuration under DIR and starts
# `postfix -c DIR/postfix` and `dovecot -c DIR/dovecot.conf`. /etc/postfix and /etc/dovecot
# are not touched: the instances have their own queue, base and state directories, and
# listen on 127.0.0.1 only. Mailboxes are Maildirs under DIR/mail, owned by a uid without a
# passwd entry (5000), delivered by Postfix's virtual(8) (fsync, its default) and read by
# Dovecot's POP3. Must run as root (Postfix's master and Dovecot's start as root).
set -eu

VMAIL_ID=5000
DOMAIN=example.test
RELAY_DOMAIN=remote.bench.test

install_packages() {
    if command -v postfix >/dev/null 2>&1 && command -v dovecot >/dev/null 2>&1 &&
        [ -e /usr/lib/dovecot/pop3 ]; then
        return 0
    fi
    printf '%s\n' \
        'postfix postfix/main_mailer_type select No configuration' \
        'postfix postfix/mailname string bench.invalid' | debconf-set-selections
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q postfix dovecot-pop3d dovecot-core
}

write_tls() {
    # ECDSA P-256, as mailhost's own certificates (src/mailhost/tls/authority.py).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=incumbents.bench.test -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null
    chmod 0644 "$DIR/cert.pem"
    chmod 0600 "$DIR/key.pem"
}

write_users() {
    : >"$DIR/users"
    : >"$DIR/postfix/vmailbox"
    for user in "$@"; do
        local_part=${user%@*}
        printf '%s:{PLAIN}%s:%s:%s::%s/mail/%s/%s::\n' "$user" "$PASSWORD" "$VMAIL_ID" \
            "$VMAIL_ID" "$DIR" "$DOMAIN" "$local_part" >>"$DIR/users"
        printf '%s %s/%s/\n' "$user" "$DOMAIN" "$local_part" >>"$DIR/postfix/vmailbox"
    done
    chown root:dovecot "$DIR/users"
    chmod 0640 "$DIR/users"
}

write_postfix() {
    conf=$DIR/postfix
    cat >"$conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $DIR/postfix-queue
data_directory = $DIR/postfix-data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $DIR/postfix.log
maillog_file_prefixes = $DIR
myhostname = incumbents.bench.test
mydomain = bench.test
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
biff = no
# 64 load connections plus the delivery agents: above the default of 100 processes.
default_process_limit = 300
smtpd_client_connection_count_limit = 0
smtpd_client_event_limit_exceptions = 127.0.0.0/8
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_base = $DIR/mail
virtual_mailbox_maps = texthash:$conf/vmailbox
virtual_uid_maps = static:$VMAIL_ID
virtual_gid_maps = static:$VMAIL_ID
virtual_minimum_uid = $VMAIL_ID
message_size_limit = 52428800
virtual_mailbox_limit = 0
transport_maps = texthash:$conf/transport
smtp_tls_security_level = none
smtpd_tls_cert_file = $DIR/cert.pem
smtpd_tls_key_file = $DIR/key.pem
smtpd_tls_security_level = may
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_sasl_auth_enable = no
EOF
    printf '%s smtp:[127.0.0.1]:%s\n' "$RELAY_DOMAIN" "$RELAY_PORT" >"$conf/transport"
    # master.cf: the stock services, chroot off (paths are under DIR), MX and submission on
    # high ports of 127.0.0.1.
    cat >"$conf/master.cf" <<EOF
127.0.0.1:$MX_PORT inet n - n - - smtpd
127.0.0.1:$SUBMISSION_PORT inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    mkdir -p "$DIR/postfix-queue" "$DIR/postfix-data"
    chown postfix "$DIR/postfix-data"
}

write_dovecot() {
    cat >"$DIR/dovecot.conf" <<EOF
instance_name = dovecot-bench
base_dir = $DIR/dovecot-run
state_dir = $DIR/dovecot-state
log_path = $DIR/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <$DIR/cert.pem
ssl_key = <$DIR/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_cache_size = 10M
auth_cache_ttl = 1 hour
auth_cache_negative_ttl = 1 hour
first_valid_uid = $VMAIL_ID
mail_location = maildir:~
pop3_uidl_format = %08Xu%08Xv
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DIR/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DIR/users
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $POP3_PORT
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $POP3S_PORT
    ssl = yes
  }
  process_limit = 300
}
service pop3 {
  process_limit = 300
}
service auth {
  unix_listener $DIR/postfix-queue/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
EOF
    mkdir -p "$DIR/dovecot-run" "$DIR/dovecot-state"
}

start() {
    install_packages
    # The bench's temporary directory is 0700: Postfix's and Dovecot's unprivileged
    # processes must reach the queue and the Maildirs below it.
    mkdir -p "$DIR/postfix" "$DIR/mail/$DOMAIN"
    chmod 0755 "$DIR"
    chown -R "$VMAIL_ID:$VMAIL_ID" "$DIR/mail"
    write_tls
    write_users "$@"
    write_postfix
    write_dovecot
    # Creates the queue's subdirectories (private/, public/, ...) with their owners.
    postfix -c "$DIR/postfix" check
    postfix -c "$DIR/postfix" start
    dovecot -c "$DIR/dovecot.conf"
}

stop() {
    if [ -f "$DIR/dovecot.conf" ]; then
        doveadm -c "$DIR/dovecot.conf" stop 2>/dev/null || true
    fi
    if [ -f "$DIR/postfix/main.cf" ]; then
        postfix -c "$DIR/postfix" stop 2>/dev/null || true
    fi
    # Both stop asynchronously: wait (up to 10 s) so that the caller may remove DIR.
    tries=0
    while [ $tries -lt 100 ] && { [ -e "$DIR/dovecot-run/master.pid" ] ||
        postfix -c "$DIR/postfix" status 2>/dev/null; }; do
        sleep 0.1
        tries=$((tries + 1))
    done
}

command=${1:?usage: $0 start|stop DIR ...}
DIR=${2:?usage: $0 start|stop DIR ...}
case $command in
start)
    MX_PORT=$3 SUBMISSION_PORT=$4 POP3_PORT=$5 POP3S_PORT=$6 RELAY_PORT=$7 PASSWORD=$8
    shift 8
    start "$@"
    ;;
stop) stop ;;
*)
    echo "usage: $0 start|stop DIR ..." >&2
    exit 2
    ;;
esac
