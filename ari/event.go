package ari

import (
	"encoding/json"
	"fmt"
)

// Event is a message from the events WebSocket: one of the generated
// event structs (*StasisStart, *ChannelDTMFReceived, …), *MissingParams,
// or *UnknownEvent for a type this build does not know.
type Event interface {
	// EventType is the message's "type".
	EventType() string
	isEvent()
}

// EventType implements Event for every generated message.
func (m *MessageBase) EventType() string { return m.Type }

// UnknownEvent is a message whose "type" the spec we were generated from
// does not list (a newer Asterisk). It is kept, never dropped: Raw holds
// the message verbatim and re-encodes to it.
type UnknownEvent struct {
	MessageBase
	Raw json.RawMessage
}

func (*UnknownEvent) isEvent() {}

// MarshalJSON returns the message as received.
func (u *UnknownEvent) MarshalJSON() ([]byte, error) { return u.Raw, nil }

// DecodeEvent decodes one events-WebSocket message by its "type".
func DecodeEvent(data []byte) (Event, error) {
	var head MessageBase
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("ari: event: %w", err)
	}
	if head.Type == "" {
		return nil, fmt.Errorf("ari: event without type")
	}
	mk, ok := eventTypes[head.Type]
	if !ok {
		return &UnknownEvent{MessageBase: head, Raw: append(json.RawMessage(nil), data...)}, nil
	}
	ev := mk()
	if err := json.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("ari: event %s: %w", head.Type, err)
	}
	return ev, nil
}
