"""The kinds of instruction the fulfillment flow writes to the outbox."""

CREATE_FULFILLMENT_ORDER = "fulfillment.create_fulfillment_order"
POST_FULFILLMENT = "fulfillment.post_fulfillment"
REQUEST_CANCELLATION = "fulfillment.request_cancellation"
CREATE_FULFILLMENT_RETURN = "fulfillment.create_fulfillment_return"
CREATE_RETURN = "fulfillment.create_return"
RECEIVE_RETURN = "fulfillment.receive_return"
