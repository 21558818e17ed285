Feature: CAMARA Site-to-Cloud VPN API, v0.1 - Operation getSession
  # Implementation indications:
  #   Ended sessions stay readable for the operator's retention (360 s by default), then 404.
  # Testing assets:
  #   A valid SessionCreate on the target's network (S2CVPN_FEATURES_SESSION_BODY); a second API client's token.
  # References to OAS spec schemas refer to openapi.yaml.

  Background: Common getSession setup
    Given an environment at "apiRoot"
    And the resource "/site-to-cloud-vpn/v0.1/sessions/{sessionId}"
    And the header "Authorization" is set to a valid access token
    And the header "x-correlator" complies with the schema at "#/components/schemas/XCorrelator"
    And the path parameter "sessionId" is set by default to an existing session

  @getSession_01_get_existing_session
  Scenario: Get an existing session by sessionId
    When the request "getSession" is sent
    Then the response status code is 200
    And the response header "Content-Type" is "application/json"
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response body complies with the OAS schema at "#/components/schemas/SessionInfo"
    And the response property "$.sessionId" is equal to the path parameter "sessionId"
    And the response property "$.status" is "AVAILABLE"
    And the response property "$.startedAt" exists
    And the response property "$.expiresAt" exists
    And the response property "$.statusInfo" does not exist

  @getSession_02_same_properties_as_created
  Scenario: After create, GET returns the object with the same properties
    Given an existing session created with the request body property "$.maxLatency" set to 50
    When the request "getSession" is sent
    Then the response status code is 200
    And the response property "$.maxLatency" is 50
    And the response property "$.serviceName" is equal to the request body property "$.serviceName"
    And the response property "$.customerEdge" is equal to the request body property "$.customerEdge"
    And the response property "$.providerEdge" is equal to the request body property "$.providerEdge"
    And the response property "$.applicationServers" is equal to the request body property "$.applicationServers"
    And the response property "$.guaranteeBandwidth" is equal to the request body property "$.guaranteeBandwidth"

  @getSession_03_get_recent_unavailable
  Scenario: A session that expired stays readable as UNAVAILABLE during the retention
    Given the path parameter "sessionId" is set to the id of a session that has expired
    When the request "getSession" is sent
    Then the response status code is 200
    And the response property "$.status" is "UNAVAILABLE"
    And the response property "$.statusInfo" is "DURATION_EXPIRED"
    And the response body complies with the OAS schema at "#/components/schemas/SessionInfo"

  @getSession_400.1_invalid_session_id
  Scenario: Invalid Argument. sessionId is not a UUID
    Given the path parameter "sessionId" is set to "not-a-uuid"
    When the request "getSession" is sent
    Then the response status code is 400
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response property "$.status" is 400
    And the response property "$.code" is "INVALID_ARGUMENT"
    And the response property "$.message" contains a user friendly text

  @getSession_400.2_invalid_x-correlator
  Scenario: Invalid x-correlator header
    Given the header "x-correlator" does not comply with the schema at "#/components/schemas/XCorrelator"
    When the request "getSession" is sent
    Then the response status code is 400
    And the response header "x-correlator" is not set to the invalid value
    And the response property "$.status" is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @getSession_401.1_no_authorization_header
  Scenario: Error response for no header "Authorization"
    Given the header "Authorization" is not sent
    When the request "getSession" is sent
    Then the response status code is 401
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"
    And the response property "$.message" contains a user friendly text

  @getSession_401.2_expired_access_token
  Scenario: Error response for expired access token
    Given the header "Authorization" is set to an expired access token
    When the request "getSession" is sent
    Then the response status code is 401
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"

  @getSession_401.3_invalid_access_token
  Scenario: Error response for invalid access token
    Given the header "Authorization" is set to an invalid access token
    When the request "getSession" is sent
    Then the response status code is 401
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"

  @getSession_403.1_missing_access_token_scope
  Scenario: Missing access token scope
    Given the header "Authorization" is set to a valid access token which does not include scope "site-to-cloud-vpn:sessions:read"
    When the request "getSession" is sent
    Then the response status code is 403
    And the response property "$.status" is 403
    And the response property "$.code" is "PERMISSION_DENIED"
    And the response property "$.message" contains a user friendly text

  @getSession_403.2_session_token_mismatch
  Scenario: Session not created by the API client given in the access token
    Given the path parameter "sessionId" is set to the id of a session created by another API client
    When the request "getSession" is sent
    Then the response status code is 403
    And the response property "$.status" is 403
    And the response property "$.code" is "PERMISSION_DENIED"

  @getSession_404.1_not_found
  Scenario: sessionId of a non-existing session
    Given the path parameter "sessionId" is set to a random UUID
    When the request "getSession" is sent
    Then the response status code is 404
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response property "$.status" is 404
    And the response property "$.code" is "NOT_FOUND"
    And the response property "$.message" contains a user friendly text

  @getSession_404.2_deleted_session
  Scenario: sessionId of a deleted session
    Given the path parameter "sessionId" is set to the id of a deleted session
    When the request "getSession" is sent
    Then the response status code is 404
    And the response property "$.code" is "NOT_FOUND"
