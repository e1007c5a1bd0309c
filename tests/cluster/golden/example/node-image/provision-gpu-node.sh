#!/usr/bin/env bash
# Turns Canonical's Ubuntu EKS image into an lbcloud GPU node image. Run by Packer as root on a
# temporary GPU instance; replaces the seed notes' manual steps one for one:
#   1. build tools, X server, Mesa and Vulkan loader (CARLA renders through Vulkan/X)
#   2. the NVIDIA driver at exactly $NVIDIA_DRIVER_VERSION (newer drivers break CARLA 0.9.x servers)
#   3. the NVIDIA container toolkit, set as containerd's default runtime (the seed did this for Docker)
#   4. at boot: the tsc clock source and an X server on :0 (the seed's "preboot commands")
set -euxo pipefail

: "${NVIDIA_DRIVER_VERSION:?set NVIDIA_DRIVER_VERSION, e.g. 470.182.03}"
export DEBIAN_FRONTEND=noninteractive

# Unattended upgrades would replace the kernel (and break the driver module) or restart containerd.
systemctl disable --now unattended-upgrades.service apt-daily.timer apt-daily-upgrade.timer || true
while fuser /var/lib/dpkg/lock-frontend >/dev/null 2>&1; do sleep 2; done

# 1. Build tools for the driver's kernel module, X, Mesa, Vulkan, and the X utilities CARLA calls.
apt-get update
apt-get install -y --no-install-recommends \
  build-essential dkms pkg-config "linux-headers-$(uname -r)" \
  xserver-xorg-core xserver-xorg mesa-utils libvulkan1 vulkan-tools \
  x11-xserver-utils xdg-user-dirs xdg-utils curl ca-certificates gnupg jq

# 2. The pinned NVIDIA driver, from NVIDIA's own installer (Ubuntu's archive only carries the latest
#    patch release of a series). DKMS rebuilds the module if the kernel ever changes.
installer="NVIDIA-Linux-x86_64-${NVIDIA_DRIVER_VERSION}.run"
curl -fsSL -o "/tmp/${installer}" "https://download.nvidia.com/XFree86/Linux-x86_64/${NVIDIA_DRIVER_VERSION}/${installer}"
sh "/tmp/${installer}" --accept-license --no-questions --ui=none --dkms --silent
rm -f "/tmp/${installer}"
apt-mark hold "linux-image-$(uname -r)" "linux-headers-$(uname -r)" linux-aws linux-image-aws linux-headers-aws || true

# 3. NVIDIA container toolkit from NVIDIA's apt repository, as containerd's default runtime so every
#    container that is given a GPU by the device plugin can use it.
keyring=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | gpg --batch --yes --dearmor -o "$keyring"
curl -fsSL https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list |
  sed "s#deb https://#deb [signed-by=${keyring}] https://#g" >/etc/apt/sources.list.d/nvidia-container-toolkit.list
apt-get update
apt-get install -y --no-install-recommends nvidia-container-toolkit
nvidia-ctk runtime configure --runtime=containerd --set-as-default
# The EKS bootstrap script regenerates containerd's config from this template on every boot.
if [ -f /etc/eks/containerd/containerd-config.toml ]; then
  nvidia-ctk runtime configure --runtime=containerd --set-as-default --config=/etc/eks/containerd/containerd-config.toml
fi
systemctl restart containerd

# 4. At boot: tsc clock source (steadier simulation timing) and an X server on :0 for CARLA.
cat >/etc/systemd/system/lbcloud-clocksource.service <<'UNIT'
[Unit]
Description=Use the tsc clock source when the instance offers it (lbcloud)
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'grep -q tsc /sys/devices/system/clocksource/clocksource0/available_clocksource && echo tsc > /sys/devices/system/clocksource/clocksource0/current_clocksource || true'
[Install]
WantedBy=multi-user.target
UNIT
cat >/etc/systemd/system/lbcloud-xorg.service <<'UNIT'
[Unit]
Description=X server on :0 on the NVIDIA GPU for CARLA (lbcloud)
After=systemd-modules-load.service
[Service]
ExecStartPre=/usr/bin/nvidia-xconfig --preserve-busid -a --virtual=1280x1024
ExecStart=/usr/bin/Xorg :0 -nolisten tcp
Restart=on-failure
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable lbcloud-clocksource.service lbcloud-xorg.service

# What is in this image, for `lbcloud cluster doctor` and humans.
cat >/etc/lbcloud-node-image <<INFO
nvidia_driver=${NVIDIA_DRIVER_VERSION}
nvidia_container_toolkit=$(dpkg-query -W -f='${Version}' nvidia-container-toolkit)
kernel=$(uname -r)
INFO

apt-get clean
rm -rf /var/lib/apt/lists/*
# Reboot so the next provisioner checks the driver as a fresh node would load it.
shutdown -r +0 || true
