// The systemd notification protocol, spoken directly: one datagram to $NOTIFY_SOCKET.
#pragma once

#include <string_view>

namespace ptbuild {

// Sends e.g. "READY=1\nSTATUS=idle" when $NOTIFY_SOCKET is set; does nothing otherwise.
// Returns false if the socket is set but the message could not be sent.
bool sd_notify(std::string_view state);

}  // namespace ptbuild
