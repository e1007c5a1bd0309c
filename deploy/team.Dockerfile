# Template of a team's agent image for lbcloud's SUMO tracks (the counterpart of the CARLA
# leaderboard's Dockerfile.master). Copy it next to your agent, then:
#
#   docker build -f team.Dockerfile -t my-team/agent:v1 .
#   lbcloud submit --track sumo-test --image my-team/agent:v1
#
# Rules the evaluation enforces: the container runs as a non-root user, with a read-only root file
# system (write to /tmp only), no network beyond its simulator, and the track's memory, process and
# CPU limits. Install everything your agent needs here; nothing is downloaded at evaluation time.
FROM lbcloud-sumo-agent:latest

# your dependencies (pip reaches the package index while the image is built)
# USER root
# RUN python3 -m pip install --no-cache-dir numpy==2.1.3
# USER 10001:10001

# your agent: one Python file with get_entry_point() and its AutonomousAgent class, plus its files
COPY --chown=10001:10001 agent.py /home/lbcloud/agent/agent.py
# COPY --chown=10001:10001 config.yaml /home/lbcloud/agent/config.yaml

ENV TEAM_AGENT=/home/lbcloud/agent/agent.py
# ENV TEAM_CONFIG=/home/lbcloud/agent/config.yaml
