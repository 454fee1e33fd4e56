// The operator's status page (GET / and GET /ui on the admin listener): one self-contained HTML
// document (src/admin/ui/status.html), compiled in.
#pragma once

#include <string_view>

namespace meridian::admin {

std::string_view status_page_html();

}  // namespace meridian::admin
