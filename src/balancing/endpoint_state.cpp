#include "meridian/balancing/endpoint_state.hpp"

namespace meridian::balancing {

std::string_view admin_state_name(AdminState state) {
  switch (state) {
    case AdminState::active:
      return "active";
    case AdminState::drain:
      return "drain";
    case AdminState::disabled:
      return "disabled";
  }
  return "active";
}

std::optional<AdminState> parse_admin_state(std::string_view text) {
  for (const auto state : {AdminState::active, AdminState::drain, AdminState::disabled}) {
    if (text == admin_state_name(state)) return state;
  }
  return std::nullopt;
}

}  // namespace meridian::balancing
