# The SUMO agent base image: what a team's image for a SUMO track is built FROM.
#
#   scripts/build-images            (builds lbcloud:latest first, then this image as lbcloud-sumo-agent:latest)
#
# It holds the track's agent API (lbcloud.tracks.sumo.agent_api) and the Python a team's agent runs
# on. A team adds its files under /home/lbcloud/agent and names its agent in $TEAM_AGENT (and its
# configuration in $TEAM_CONFIG), the CARLA leaderboard's convention; see deploy/team.Dockerfile.
# The backend runs the container as a non-root user with a read-only root file system: agents write
# only to /tmp.
ARG LBCLOUD_IMAGE=lbcloud:latest
FROM ${LBCLOUD_IMAGE}
LABEL org.opencontainers.image.title="lbcloud-sumo-agent" \
      org.opencontainers.image.description="Base image of a team's agent for lbcloud's SUMO tracks"
USER 10001:10001
WORKDIR /home/lbcloud/agent
ENV TEAM_AGENT=/home/lbcloud/agent/agent.py \
    TEAM_CONFIG= \
    HOME=/home/lbcloud
ENTRYPOINT []
CMD ["python3", "-c", "print('a SUMO agent image: lbcloud starts it with the evaluator as its command')"]
