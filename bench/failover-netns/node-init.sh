#!/bin/bash
# PID 1 of one simulated tandem node (the counterpart of the shared
# harness's lib/node-init.sh, with tandem in place of corosync+pacemakerd).
#
# Started by run.sh as:
#   ip netns exec pcmk-nN unshare --mount --uts --pid --fork --kill-child \
#        --mount-proc --propagation private  node-init.sh N NODEDIR BIN CONFIG
# It gives the node a private /run, /tmp and nginx dirs (agents keep pid
# and state files there, and ocf:heartbeat:nginx stops with `pkill -f` on
# its config path, so a PID namespace per node is required), writes the
# nginx config answering the node's name, starts `tandem daemon` and stays
# as the node's init: reaps orphans and takes the whole node down with it.
set -eu
N=$1
D=$2          # per-node state directory on the host fs (not under /run or /tmp)
BIN=$3        # the tandem binary
CONFIG=$4     # this node's settings file
NAME=pcmk-n$N

hostname "$NAME"
mkdir -p "$D/lib-nginx" "$D/log-nginx"
mount --bind "$D/lib-nginx" /var/lib/nginx
mount --bind "$D/log-nginx" /var/log/nginx
mount -t tmpfs -o mode=0755,size=64m tmpfs /run
mount -t tmpfs -o mode=1777,size=64m tmpfs /tmp
mkdir -p /run/lock /run/resource-agents /run/nginx /run/harness
chmod 1755 /run/resource-agents

cat > /run/harness/nginx.conf <<NGINX
worker_processes 1;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path /run/nginx/body;
    proxy_temp_path /run/nginx/proxy;
    fastcgi_temp_path /run/nginx/fastcgi;
    uwsgi_temp_path /run/nginx/uwsgi;
    scgi_temp_path /run/nginx/scgi;
    server {
        listen 80;
        location / {
            default_type text/plain;
            return 200 "$NAME\n";
        }
    }
}
NGINX

ip link set lo up

TANDEM_LOG=${TANDEM_LOG:-info,openraft=warn} "$BIN" daemon --config "$CONFIG" >>"$D/tandem.log" 2>&1 &
TD=$!
echo "$TD" > /run/harness/pids

trap 'kill -TERM $TD 2>/dev/null; wait $TD; exit 0' TERM INT
while kill -0 $TD 2>/dev/null; do
    sleep 1 & wait $! || true
done
echo "node $NAME: tandem exited" >&2
exit 1
