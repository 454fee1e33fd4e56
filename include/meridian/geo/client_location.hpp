// What GeoIP knows of a client: coordinates when the database has them (City
// databases; Country databases have none), ISO country and continent codes when found.
// A plain value, filled per request by GeoLocator and read by steering.
#pragma once

namespace meridian::geo {

struct ClientLocation {
  bool has_coordinates = false;
  double lat = 0;
  double lon = 0;
  char country[3] = {};    // ISO 3166-1 alpha-2, upper case; "" when unknown
  char continent[3] = {};  // AF AN AS EU NA OC SA; "" when unknown
};

}  // namespace meridian::geo
