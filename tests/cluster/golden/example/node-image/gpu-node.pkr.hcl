# GPU node image for lbcloud's EKS GPU pools: Canonical's Ubuntu EKS image plus a pinned NVIDIA
# driver, the NVIDIA container toolkit as containerd's default runtime, and what CARLA needs to
# render (Vulkan, an X server on display :0). Values come from variables.auto.pkrvars.hcl, which
# `lbcloud cluster render` writes from the cluster spec.

variable "region" {
  type        = string
  description = "AWS region the image is built in (and used from)."
}

variable "kubernetes_version" {
  type        = string
  description = "EKS Kubernetes version of the base image, e.g. 1.29."
}

variable "ubuntu_version" {
  type        = string
  description = "Ubuntu release of the base image, e.g. 22.04."
}

variable "nvidia_driver_version" {
  type        = string
  description = "Exact NVIDIA driver version, e.g. 470.182.03 (CARLA 0.9.x needs the 470 series)."
}

variable "instance_type" {
  type        = string
  description = "Temporary GPU instance the image is built on."
}

variable "volume_size_gb" {
  type        = number
  description = "Root volume size of the image in GB."
}

variable "cluster_name" {
  type        = string
  description = "The lbcloud cluster the image is for (a tag only)."
}

locals {
  # The seed notes' naming convention, so images are recognisable in the EC2 console.
  image_name = "ubuntu-eks/k8s_${var.kubernetes_version}/ubuntu-${var.ubuntu_version}/nvidia-${var.nvidia_driver_version}/gpu-capabilities-enabled"
}

source "amazon-ebs" "gpu_node" {
  region          = var.region
  instance_type   = var.instance_type
  ami_name        = local.image_name
  ami_description = "lbcloud GPU node: Ubuntu ${var.ubuntu_version} EKS ${var.kubernetes_version}, NVIDIA ${var.nvidia_driver_version}"
  ssh_username    = "ubuntu"

  # Canonical's EKS images for this Kubernetes version; Packer picks the newest.
  source_ami_filter {
    filters = {
      name                = "ubuntu-eks/k8s_${var.kubernetes_version}/images/*ubuntu-*-${var.ubuntu_version}-amd64-server-*"
      architecture        = "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = ["099720109477"]
    most_recent = true
  }

  launch_block_device_mappings {
    device_name           = "/dev/sda1"
    volume_size           = var.volume_size_gb
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    delete_on_termination = true
  }

  tags = {
    "Name"                  = local.image_name
    "lbcloud/cluster"       = var.cluster_name
    "lbcloud/nvidia-driver" = var.nvidia_driver_version
    "lbcloud/kubernetes"    = var.kubernetes_version
  }
}

build {
  sources = ["source.amazon-ebs.gpu_node"]

  provisioner "shell" {
    script            = "${path.root}/provision-gpu-node.sh"
    environment_vars  = ["NVIDIA_DRIVER_VERSION=${var.nvidia_driver_version}"]
    execute_command   = "chmod +x {{ .Path }}; sudo -E bash {{ .Path }}"
    expect_disconnect = true
  }

  # After the reboot the script requested: the driver must load and see the GPU.
  provisioner "shell" {
    inline       = ["nvidia-smi", "nvidia-ctk --version"]
    pause_before = "30s"
  }

  post-processor "manifest" {
    output = "${path.root}/manifest.json"
  }
}
