# Written by `lbcloud cluster render` from the cluster spec; edit the spec, not this file.
region                = "us-east-1"
kubernetes_version    = "1.29"
ubuntu_version        = "22.04"
nvidia_driver_version = "470.182.03"
instance_type         = "g5.xlarge"
volume_size_gb        = 100
cluster_name          = "leaderboard"
