# Packer 1.7+ installs the Amazon plugin from here with `packer init` (Packer 1.6 has it built in
# and does not know this block; validate gpu-node.pkr.hcl on its own there).
packer {
  required_version = ">= 1.7.0"
  required_plugins {
    amazon = {
      version = ">= 1.2.0"
      source  = "github.com/hashicorp/amazon"
    }
  }
}
