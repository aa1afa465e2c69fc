"""Between the protobuf messages of dnswatch_pb.v1 and the shared model, both ways: `feeds` (the Feeds and
FeedDistribution services) and `events` (the Events service). The collector's servicers, the agent's feed
stream and the consumer's command all convert here, so both ends of a message read it alike.

Not pure: these modules import the generated protobuf code.
"""
